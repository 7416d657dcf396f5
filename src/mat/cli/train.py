"""`python -m mat train --config FILE --out DIR [--set KEY.PATH=VALUE ...] [--device cpu] [--force]`

Trains one run, resuming from `DIR/.work/` if an earlier attempt was interrupted. A progress bar
(steps, loss) and one line per evaluation go to stderr; when stderr is not a terminal (a log
file), plain progress lines every ~10% instead of bar frames. Exit status: 0 done (or already
done), 1 the loss diverged, 2 a bad config, missing or unverified data, or an output folder holding
another run, 130 interrupted (Ctrl-C; rerun to resume).

Data-parallel (`train.gpus: N`, mat.train.distributed): launch the same command through
`torchrun --standalone --nproc_per_node N -m mat train ...`; only rank 0 shows progress, logs and
writes outputs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="run config (YAML; see src/mat/schemas/run.schema.yaml)")
    parser.add_argument("--out", required=True, help="output folder: metrics.csv, mntk.csv, modules.csv, summary.json")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config key (value read as YAML), e.g. --set data.seq_len=32; repeatable",
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the config's device")
    parser.add_argument("--force", action="store_true",
                        help="start afresh: replace outputs made with a different config and discard any resume state")
    parser.add_argument("--discard-stale", action="store_true",
                        help="discard (with a log line) resume state left by a run of another config instead of "
                             "refusing; finished outputs of another config are still refused without --force "
                             "(the workflow passes this: it reruns a job only when its config changed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


class _TqdmHandler(logging.Handler):
    """Log lines that do not break the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def run(args: argparse.Namespace) -> int:
    from mat.train import ConfigError, DivergedError, load_run_config, train

    logger = logging.getLogger("mat.train")
    if not logger.handlers:
        handler = _TqdmHandler()
        handler.setFormatter(logging.Formatter("mat train: %(message)s"))
        logger.addHandler(handler)
    main = os.environ.get("RANK", "0") == "0"  # torchrun sets RANK; only rank 0 talks
    logger.setLevel(logging.INFO if main else logging.WARNING)
    overrides = list(args.overrides) + ([f"device={args.device}"] if args.device else [])
    try:
        cfg = load_run_config(args.config, overrides)
        summary = train(cfg, args.out, force=args.force, progress=not args.quiet and main,
                        discard_stale=args.discard_stale)
    except ConfigError as exc:  # also missing data and conflicting outputs
        print(f"python -m mat train: {exc}", file=sys.stderr)
        return 2
    except DivergedError as exc:
        print(f"python -m mat train: training diverged: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        from mat.train.loop import RunInterrupted

        where = f" at step {exc.step}" if isinstance(exc, RunInterrupted) else ""
        print(f"python -m mat train: interrupted{where}; rerun the same command to resume", file=sys.stderr)
        return 130
    if not main:
        return 0
    final = {split: v for split, v in summary.get("final", {}).items() if split != "train"}
    parts = [f"{split} loss {_num(v['loss'])} acc {_num(v['accuracy'])}" for split, v in final.items()]
    print(f"python -m mat train: done, {summary['steps']} steps; {'; '.join(parts)} -> {args.out}", file=sys.stderr)
    return 0
