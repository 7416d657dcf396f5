"""`python -m mat table NAME --profile P`: a paper table from a profile's finished runs.

    python -m mat table table1 --profile tiny            -> results/tiny/table1.csv, table1.md
"""

from __future__ import annotations

import argparse
import sys

from mat import profiles
from mat.report.common_cli import add_common_arguments, load
from mat.report.runs import ReportInputError
from mat.report.tables import write_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="table1 | table2 | table3 | table5 | table6 | table7")
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        profile = load(args)
        csv_path, md_path = write_table(args.name, profile, args.root)
    except (ReportInputError, profiles.ProfileError) as exc:
        print(f"python -m mat table {args.name}: {exc}", file=sys.stderr)
        return 1
    print(md_path.read_text())
    print(f"wrote {csv_path} and {md_path}")
    return 0
