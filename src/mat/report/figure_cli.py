"""`python -m mat figure NAME --profile P`: a figure from P's finished runs.

    python -m mat figure fig1b --profile tiny   -> paper_figures/tiny/fig1b.png, .pdf, .csv
Figures: fig1b, curves_table1, curves_table2, curves_table3, and the analysis figures fig1a, fig2,
fig3, fig4, fig5.
"""

from __future__ import annotations

import argparse
import sys

from mat import profiles
from mat.report.common_cli import add_common_arguments, load
from mat.report.runs import ReportInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="fig1a | fig1b | fig2 | fig3 | fig4 | fig5 | curves_table1 | curves_table2 | curves_table3")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mat.report.figures import write_figure  # matplotlib loads only when a figure is drawn

    try:
        profile = load(args)
        paths = write_figure(args.name, profile, args.root)
    except (ReportInputError, profiles.ProfileError) as exc:
        print(f"python -m mat figure {args.name}: {exc}", file=sys.stderr)
        return 1
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
