"""`python -m mat table|figure|claims`: a paper table, a figure, or Section 5.1's claims from a
profile's finished runs. What each name builds is in `mat.report.targets`.

    python -m mat table table1 --profile tiny   -> results/tiny/table1.csv, table1.md
    python -m mat figure fig1b --profile tiny   -> paper_figures/tiny/fig1b.png, .pdf, .csv
    python -m mat claims --profile tiny         -> results/tiny/claims.md, claims.csv (reads table*.csv)
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Callable, NamedTuple

from mat import profiles
from mat.cli.profile_args import add_profile_arguments, load
from mat.atomic import write_all_atomic
from mat.report.runs import ReportInputError


class Command(NamedTuple):
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _target_command(kind: str) -> Command:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        from mat.report.targets import TARGETS

        parser.add_argument("name", help=" | ".join(t.name for t in TARGETS.values() if t.kind == kind))
        add_profile_arguments(parser)

    def run(args: argparse.Namespace) -> int:
        from mat.report import targets

        try:
            paths = targets.write(args.name, load(args), args.root, kind)
        except (ReportInputError, profiles.ProfileError) as exc:
            print(f"python -m mat {kind} {args.name}: {exc}", file=sys.stderr)
            return 1
        if "md" in paths:
            print(paths["md"].read_text())
        print("wrote " + ", ".join(str(p) for p in paths.values()))
        return 0

    return Command(add_arguments, run)


table = _target_command("table")
figure = _target_command("figure")


def _run_claims(args: argparse.Namespace) -> int:
    from mat.report.claims import evaluate, to_frame, to_markdown

    try:
        profile = load(args)
        results = evaluate(profile, args.root)
    except (ReportInputError, profiles.ProfileError) as exc:
        print(f"python -m mat claims: {exc}", file=sys.stderr)
        return 1
    out = Path(args.root) / "results" / profile["profile"]
    buf = io.StringIO()
    to_frame(results).to_csv(buf, index=False)
    md = to_markdown(profile, results)
    write_all_atomic({out / "claims.csv": buf.getvalue(), out / "claims.md": md})
    print(md)
    print(f"wrote {out / 'claims.csv'} and {out / 'claims.md'}")
    return 0


claims = Command(add_profile_arguments, _run_claims)
