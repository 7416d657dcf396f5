"""`python -m mat claims --profile P`: Section 5.1's claims judged on P's tables.

Writes results/<P>/claims.md and claims.csv (atomically, both or none); reads results/<P>/table*.csv.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from mat import profiles
from mat.report.claims import evaluate, to_frame, to_markdown
from mat.report.common_cli import add_common_arguments, load
from mat.report.io import write_all_atomic
from mat.report.runs import ReportInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
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
