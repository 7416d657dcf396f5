"""`python -m mat config`: list a profile's runs, or write one run's resolved config.

    python -m mat config list  --profile tiny
    python -m mat config write --profile tiny --experiment table1 --method mat --seed 0 --out FILE

`show` and `write` warn (stderr) when the run's schedule gives MAT fewer than 3 mNTK evaluations,
so that Eq. 6 cannot act (`mat.schedule`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from mat import profiles, schedule
from mat.atomic import write_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("List a profile's runs (every run config validated), or show / write one run's "
                          "resolved config (validated as `mat train` will). Exit 2 on a bad profile or run.")
    parser.add_argument("action", choices=["list", "show", "write"],
                        help="list: every run of the profile; show: one run's config on stdout; "
                             "write: one run's config to --out")
    parser.add_argument("--profile", default="tiny", help="profile name: config/profiles/NAME.yaml (default tiny)")
    parser.add_argument("--profile-dir", default=str(profiles.PROFILE_DIR), help="folder of the profile files")
    parser.add_argument("--experiment", help="show/write: an experiment of the profile (e.g. table1)")
    parser.add_argument("--method", help="show/write: a method of that experiment (e.g. mat)")
    parser.add_argument("--seed", type=int, help="show/write: the run's seed")
    parser.add_argument("--out", help="with `write`: the YAML file to write (atomically)")


def write_yaml_atomic(data: dict, path: str | Path) -> None:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))  # the project's one atomic writer


def run(args: argparse.Namespace) -> int:
    try:
        prof = profiles.load_profile(args.profile, args.profile_dir)
        if args.action == "list":
            profiles.check_runs(prof)
            for r in profiles.runs(prof):
                print(f"{r.experiment}\t{r.method}\t{r.seed}\t{r.dir}")
            return 0
        missing = [k for k in ("experiment", "method", "seed") if getattr(args, k) is None]
        if missing:
            print(f"python -m mat config {args.action}: missing --{', --'.join(missing)}", file=sys.stderr)
            return 2
        cfg = profiles.check_run(prof, args.experiment, args.method, args.seed)
        for line in schedule.schedule_warnings(cfg):
            print(f"warning: {line}", file=sys.stderr)
        if args.action == "show":
            yaml.safe_dump(cfg, sys.stdout, sort_keys=False)
        else:
            if not args.out:
                print("python -m mat config write: missing --out", file=sys.stderr)
                return 2
            write_yaml_atomic(cfg, args.out)
        return 0
    except profiles.ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
