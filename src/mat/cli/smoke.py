"""`python -m mat smoke --profile NAME [--steps 3] [--out results/NAME/smoke]`

Every experiment x method of a profile, one seed each, at the profile's real model sizes, batch
size, sequence length, mNTK samples and memory budget, for a few steps through the real trainer,
forcing one mNTK measurement the way the method uses it, one evaluation, one checkpoint and a resume
(mat.smoke). Each run is its own process: a failure or an out-of-memory ends that run only.
Writes results/NAME/smoke.{csv,md} (measurements, projected wall time of the full runs, totals per
table); the runs themselves (logs, results) go to --out, which no table reads.

Reductions for a small machine are explicit and recorded in the outputs:
  --samples S          mNTK samples (ntk.samples) instead of the profile's
  --reduce KEY=VALUE   any other run-config key (repeatable), e.g. train.eval_batch_size=8
  --reduce EXPERIMENT:KEY=VALUE   the same for one experiment's runs, e.g.
                       table7_large:train.batch_size=4 (a model that fits only at a smaller batch)
  --eval-batches B     evaluation batches per split (default 2)
  --experiments a,b    only these experiments;  --methods a,b  only these methods
A smoke of a large profile on a small machine can take hours: --resume keeps the rows of the
existing table whose run, steps and reductions match, runs only the asked-for runs without an ok
row, and lists every run of the profile that has a row, failures included (a stopped smoke goes on
where it stopped; a table can be completed in parts, --experiments a few at a time).
Exit status: 0 every run ok with every column filled, 1 otherwise (each problem on stderr), 2 a bad
profile or option.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="tiny", help="config/profiles/NAME.yaml (default tiny)")
    parser.add_argument("--profile-dir", default="config/profiles", help="folder of the profile files")
    parser.add_argument("--steps", type=int, default=3, help="training steps per run (>= 2; default 3)")
    parser.add_argument("--out", help="folder for the smoke runs' logs and results (default results/NAME/smoke)")
    parser.add_argument("--csv", help="the table (default results/NAME/smoke.csv; smoke.md beside it)")
    parser.add_argument("--eval-batches", type=int, default=2, help="evaluation batches per split (default 2)")
    parser.add_argument("--samples", type=int, help="REDUCE: ntk.samples (S) of every run, recorded as a reduction")
    parser.add_argument("--reduce", action="append", default=[], metavar="KEY=VALUE",
                        help="REDUCE: a run-config key of every run, or of one experiment's as "
                             "EXPERIMENT:KEY=VALUE (repeatable), recorded as a reduction")
    parser.add_argument("--resume", action="store_true",
                        help="keep the ok rows of the existing table that match (run, steps, reductions); run the rest")
    parser.add_argument("--experiments", help="comma-separated experiments (default: all)")
    parser.add_argument("--methods", help="comma-separated methods (default: all)")
    parser.add_argument("--timeout", type=float, help="seconds per run before it is stopped and reported as an error")
    parser.add_argument("--keep", action="store_true", help="keep each run's outputs (checkpoints can be GBs)")


def _list(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _reductions(args: argparse.Namespace) -> dict:
    """KEY.PATH -> value of --samples and every --reduce KEY=VALUE (the value read as YAML)."""
    import yaml

    reduce = {"ntk.samples": args.samples} if args.samples else {}
    for item in args.reduce:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"--reduce {item!r}: expected [EXPERIMENT:]KEY.PATH=VALUE, e.g. train.eval_batch_size=8")
        reduce[key.strip()] = yaml.safe_load(value)
    return reduce


def run(args: argparse.Namespace) -> int:
    from mat import profiles
    from mat.bench.harness import load_avg
    from mat.provenance import cpu_name
    from mat.smoke import plan, report, runner
    from mat.smoke.plan import SmokeRun

    try:
        prof = profiles.load_profile(args.profile, args.profile_dir)
        out = Path(args.out or f"results/{args.profile}/smoke")
        csv_path = Path(args.csv or f"results/{args.profile}/smoke.csv")
        reduce = _reductions(args)
        runs = plan.plan(prof, out, args.steps, args.eval_batches, _list(args.experiments), _list(args.methods), reduce)
        # --resume: the table is every run of the profile with a row, kept or new (a table completed in parts)
        table = plan.plan(prof, out, args.steps, args.eval_batches, reduce=reduce, data=False) if args.resume else runs
    except (profiles.ProfileError, ValueError) as exc:
        print(f"python -m mat smoke: {exc}", file=sys.stderr)
        return 2
    if not runs:
        print("python -m mat smoke: no run matches --experiments/--methods", file=sys.stderr)
        return 2
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    previous = report.matching_rows(csv_path, table) if args.resume else {}
    todo = [r for r in runs if previous.get(report.key(r), {}).get("status") != "ok"]  # no row, or not ok
    kept = {k: row for k, row in previous.items() if k not in {report.key(r) for r in todo}}
    loads: list[float] = []

    def header(listed: list[SmokeRun]) -> list[str]:
        load = f"; 1-minute load average after each run {min(loads):.1f}-{max(loads):.1f}" if loads else ""
        return [
            f"{len(listed)} runs (seed {', '.join(sorted({str(r.seed) for r in listed}))} of each experiment x method listed), "
            f"{args.steps} steps each, one evaluation over {args.eval_batches} batch(es) per split, a checkpoint at step "
            f"{args.steps - 1} and a resume from it",
            f"machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} CPU(s){load}; "
            f"date {datetime.date.today().isoformat()}; command `python -m mat smoke {' '.join(sys.argv[2:]) or '--profile ' + args.profile}`",
            "reduced from the profile: " + (report.reductions(listed) or "nothing"),
            *([f"{len(kept)} of the rows kept from the table's earlier runs of the same runs, steps and reductions "
               f"(--resume; their device and load as measured then; a run not ok is run again when asked for)"]
              if kept else []),
        ]

    rows: list[dict] = []

    def publish(done: list[SmokeRun], results: list[dict]) -> None:
        """Both tables after every run: a smoke stopped half-way still shows what it measured."""
        if load_avg() is not None and done:
            loads.append(load_avg())
        fresh = {report.key(r): report.row(r, res) for r, res in zip(done, results)}
        # a run asked for again keeps its earlier row (a failure) until its new one is in
        listed = [r for r in table if report.key(r) in previous or report.key(r) in fresh]
        rows[:] = [fresh.get(report.key(r)) or previous[report.key(r)] for r in listed]
        report.write_csv(csv_path, rows)
        report.write_markdown(csv_path.with_suffix(".md"), report.markdown(prof, listed, rows, header(listed)))

    if kept:
        say(f"python -m mat smoke: --resume keeps {len(kept)} row(s) of {csv_path}; {len(todo)} run(s) to go")
        publish([], [])
    runner.run_all(todo, out, args.timeout, args.keep, say, on_result=publish)
    bad = report.problems(rows)
    for line in bad:
        say(f"python -m mat smoke: {line}")
    ok = sum(r["status"] == "ok" for r in rows)
    say(f"python -m mat smoke: {ok}/{len(rows)} ok -> {csv_path}, {csv_path.with_suffix('.md')}")
    return 1 if bad else 0
