"""Expected compute time per table of a profile: training steps x measured FLOPs per step / throughput.

For every run of the profile (experiment x method x seed, `mat.profiles.runs`):

    steps per run  = train.max_steps, or train.epochs x ceil(n_train / train.batch_size)
                     (`mat.train.RunPlan`: the trainer's own plan)
    FLOPs per step = one VANILLA training step at the run's batch shape and model, measured with
                     `mat.flops.count_step` (forward + full backward), on a shape-only ("meta")
                     copy of the model by default (the same count as on a real one, much faster);
                     cached per (model config, batch shape)
    hours          = steps x FLOPs per step / throughput

What the FLOPs leave out, so the hours are a bound for the training steps, not a forecast of a run:
every method is charged a vanilla step (MAT, Rand, Multirate and the pruning methods skip some
weight gradients, so for them this is an upper bound); the mNTK evaluations and SNIP scores a method
needs, the evaluations on valid/test and the logging are not counted; MAT may also stop early when
it has nothing left to train.

n_train (needed only for runs with `train.epochs`) and the FLOPs come from `mat.bench.forecast`
(shared with benchmarks/mat_overhead.py): counted from the run's data folder, generated for the
tiny-* datasets, or documented sizes of the real ones (lower bounds for WikiText). The CSV's
`n_train_source` says which rule each row used.

Throughput, two columns, never mixed:
- measured: the achieved FLOP/s of a vanilla row (frozen_fraction 0) of
  benchmarks/results/throughput.csv for `--device` (the fastest such row), BERT MLM at the shape
  that row names, applied to every model of the profile;
- projection, not measured: one H200 at `--assume-mfu` (default 40%, the issue's target) of its
  989 TFLOP/s dense bf16 peak (`mat.bench.peaks`).
Hours are single-device hours for the global batch; with `train.gpus: N` the wall time is about
1/N of that (FLOPs are the same).

    python benchmarks/gpu_hours.py                     # paper profile, CPU throughput row
    python benchmarks/gpu_hours.py --profile small

Output: benchmarks/results/gpu_hours_<profile>.csv (one row per experiment and method; written
atomically) and a markdown table per paper table on stdout.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from mat.atomic import write_csv_atomic
from mat.bench.forecast import Datasets, StepFlops, plan
from mat.bench.peaks import H200_BF16 as H200_PEAK_TFLOPS
from mat.profiles import ProfileError, load_profile, run_config, runs
from mat.report.targets import TARGETS
from mat.train.run_config import load_run_config

ROOT = Path(__file__).resolve().parents[1]
FIELDS = (
    "profile", "target", "used_by", "experiment", "method", "seeds", "model", "batch_shape", "vocab",
    "n_train", "n_train_source", "steps_per_epoch", "epochs", "max_steps", "steps_per_run", "last_batch",
    "flops_per_step",
    "flops_per_run", "pflops_all_seeds", "measured_tflops", "measured_on", "measured_hours",
    "projected_tflops", "projected_h200_hours", "notes",
)


# ---------------------------------------------------------------------------------- throughput
def measured_throughput(path: Path, device: str) -> tuple[float, str]:
    """(achieved TFLOP/s, a description) of the fastest vanilla row of throughput.csv for `device`."""
    if not path.is_file():
        raise SystemExit(f"gpu_hours: {path} not found; run benchmarks/throughput.py first")
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["device"] == device and float(r["frozen_fraction"]) == 0.0]
    if not rows:
        raise SystemExit(
            f"gpu_hours: {path} has no vanilla (frozen_fraction 0) row measured on {device}; "
            f"run benchmarks/throughput.py --device {device}"
        )
    best = max(rows, key=lambda r: float(r["achieved_tflops"]))
    what = (f"{best['hardware']}, {best['threads']} threads, torch {best['torch']}: BERT MLM seq {best['seq_len']} "
            f"batch {best['batch']} {best['precision']}")
    return float(best["achieved_tflops"]), what


# ---------------------------------------------------------------------------------- table
def target_of(experiment: str) -> tuple[str, str]:
    """(the table -- else figure -- that an experiment is run for, every target that reads it)."""
    users = [t for t in TARGETS.values() if experiment in t.experiments]
    tables = [t.name for t in users if t.kind == "table"]
    main = tables[0] if tables else (users[0].name if users else experiment)
    return main, " ".join(t.name for t in users)


def estimate(profile: dict, datasets: Datasets, flops: StepFlops, measured: tuple[float, str],
             assume_mfu: float, experiments: list[str] | None = None) -> list[dict]:
    measured_tflops, measured_on = measured
    projected_tflops = assume_mfu * H200_PEAK_TFLOPS
    groups: dict[tuple[str, str], list[int]] = {}
    for r in runs(profile, experiments):
        groups.setdefault((r.experiment, r.method), []).append(r.seed)
    rows = []
    for (exp, method), seeds in groups.items():
        cfg = load_run_config(run_config(profile, exp, method, seeds[0]))
        run = plan(cfg, datasets, flops)
        total = run["flops_per_run"] * len(seeds)
        target, used_by = target_of(exp)
        rows.append({
            "profile": profile["profile"], "target": target, "used_by": used_by, "experiment": exp,
            "method": method, "seeds": len(seeds), **run, "pflops_all_seeds": f"{total / 1e15:.6g}",
            "measured_tflops": measured_tflops, "measured_on": measured_on,
            "measured_hours": f"{total / (measured_tflops * 1e12) / 3600:.6g}",
            "projected_tflops": f"{projected_tflops:.6g}",
            "projected_h200_hours": f"{total / (projected_tflops * 1e12) / 3600:.6g}",
        })
    return rows


def _num(x: float) -> str:
    """Readable at every scale: 14,512 / 419.0 / 0.29 / 0.000174."""
    return f"{x:,.0f}" if x >= 1000 else f"{x:.1f}" if x >= 10 else f"{x:.3g}"


def markdown(rows: list[dict], measured: tuple[float, str], assume_mfu: float) -> str:
    """One line per target: runs, steps, PFLOPs, hours at the measured and at the projected rate."""
    tflops, where = measured
    projected = assume_mfu * H200_PEAK_TFLOPS
    per: dict[str, list[float]] = {}
    for r in rows:
        acc = per.setdefault(r["target"], [0, 0, 0.0, 0.0, 0.0])
        flops = r["seeds"] * r["flops_per_run"]
        acc[0] += r["seeds"]
        acc[1] += r["seeds"] * r["steps_per_run"]
        acc[2] += flops / 1e15
        acc[3] += flops / (tflops * 1e12) / 3600
        acc[4] += flops / (projected * 1e12) / 3600
    lines = [
        f"| table | runs | steps | PFLOPs | hours at the measured {tflops * 1e3:.1f} GFLOP/s "
        f"| H200 GPU-hours (projection, {assume_mfu:.0%} MFU) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = [0, 0, 0.0, 0.0, 0.0]
    for name, a in per.items():
        total = [x + y for x, y in zip(total, a)]
        lines.append(f"| {name} | {a[0]} | {a[1]:,} | {_num(a[2])} | {_num(a[3])} | {_num(a[4])} |")
    lines.append(f"| all | {total[0]} | {total[1]:,} | {_num(total[2])} | {_num(total[3])} | {_num(total[4])} |")
    lines.append(f"\nmeasured: {where}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper")
    p.add_argument("--profile-dir", type=Path, default=ROOT / "config" / "profiles")
    p.add_argument("--root", type=Path, default=ROOT, help="where relative data folders are (default: the repository)")
    p.add_argument("--experiments", nargs="+", help="only these experiments (default: all of the profile)")
    p.add_argument("--throughput", type=Path, default=Path(__file__).parent / "results" / "throughput.csv")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="which measured rows to use")
    p.add_argument("--assume-mfu", type=float, default=0.4, help="MFU of the H200 projection (default 0.4)")
    p.add_argument("--count-device", default="meta", choices=["meta", "cpu"],
                   help="where count_step runs: meta (shapes only, default) or cpu (real arithmetic, slow)")
    p.add_argument("--out", type=Path, help="default: benchmarks/results/gpu_hours_<profile>.csv")
    args = p.parse_args(argv)
    if not 0 < args.assume_mfu <= 1:
        raise SystemExit(f"gpu_hours: --assume-mfu must lie in (0, 1], got {args.assume_mfu}")
    out = args.out or Path(__file__).parent / "results" / f"gpu_hours_{args.profile}.csv"
    try:
        profile = load_profile(args.profile, args.profile_dir)
    except ProfileError as e:
        raise SystemExit(f"gpu_hours: {e}") from None
    measured = measured_throughput(args.throughput, args.device)
    with tempfile.TemporaryDirectory(prefix="gpu_hours.") as scratch:
        rows = estimate(profile, Datasets(profile, args.root, Path(scratch)), StepFlops(args.count_device),
                        measured, args.assume_mfu, args.experiments)
    write_csv_atomic(out, rows, FIELDS)
    print(markdown(rows, measured, args.assume_mfu))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
