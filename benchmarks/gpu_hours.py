"""Expected compute time per table of a profile: training steps x measured FLOPs per step / throughput.

For every run of the profile (experiment x method x seed, `mat.profiles.runs`):

    steps per run  = train.max_steps, or train.epochs x ceil(n_train / train.batch_size)
                     (exactly how `mat.train.loop.Trainer` sets `total_steps`; tests compare the two)
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

n_train (needed only for runs with `train.epochs`): read from the run's data folder when it holds
the prepared dataset (exact: the sequences the trainer would load); for the generated datasets
(tiny-*) a missing folder is generated into a temporary one with the profile's options (offline).
The real datasets are not downloaded here; without them:
- CIFAR-10: 50,000 training images (the dataset's documentation; exact, the trainer uses them all);
- WikiText: the sequences the trainer cuts depend on our WordPiece tokenisation, which needs the
  text. We take the documented word-level token count of the training split (Merity et al. 2016,
  Table 1: WikiText-2 2,088,628; WikiText-103 103,227,021) as the token stream: a LOWER bound on
  the sequences (every word is at least one WordPiece; "@-@" and other punctuation split further,
  and each paragraph adds a [SEP]), hence on the steps of epoch-based WikiText runs. The CSV's
  `n_train_source` says which rule each row used.

Throughput, two columns, never mixed:
- measured: the achieved FLOP/s of a vanilla row (frozen_fraction 0) of
  benchmarks/results/throughput.csv for `--device` (the fastest such row), BERT MLM at the shape
  that row names, applied to every model of the profile;
- projection, not measured: one H200 at `--assume-mfu` (default 40%, the issue's target) of its
  989 TFLOP/s dense bf16 peak (benchmarks/throughput.py, PEAK_TFLOPS).
Hours are single-device hours for the global batch; with `train.gpus: N` the wall time is about
1/N of that (FLOPs are the same).

    python benchmarks/gpu_hours.py                     # paper profile, CPU throughput row
    python benchmarks/gpu_hours.py --profile small

Output: benchmarks/results/gpu_hours_<profile>.csv (one row per experiment and method; written
atomically) and a markdown table per paper table on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import tempfile
from pathlib import Path

import torch
from throughput import PEAK_TFLOPS  # benchmarks/ is the script's folder, so on sys.path

from mat.flops import count_step
from mat.models import build_model
from mat.profiles import ProfileError, load_profile, run_config, runs
from mat.report.io import write_csv_atomic
from mat.report.targets import TARGETS
from mat.train.run_config import IMAGE_DATASETS, load_run_config

ROOT = Path(__file__).resolve().parents[1]
H200_PEAK_TFLOPS = PEAK_TFLOPS["H200"]["bf16"]
CIFAR10_TRAIN_IMAGES = 50_000  # CIFAR-10 documentation: 5 batches of 10,000 training images
WIKITEXT_TRAIN_WORDS = {  # Merity et al. 2016 ("Pointer Sentinel Mixture Models"), Table 1
    "wikitext2": 2_088_628,
    "wikitext103": 103_227_021,
}
FIELDS = (
    "profile", "target", "used_by", "experiment", "method", "seeds", "model", "batch_shape", "vocab",
    "n_train", "n_train_source", "steps_per_epoch", "epochs", "max_steps", "steps_per_run", "last_batch",
    "flops_per_step",
    "flops_per_run", "pflops_all_seeds", "measured_tflops", "measured_on", "measured_hours",
    "projected_tflops", "projected_h200_hours", "notes",
)


# ---------------------------------------------------------------------------------- steps
def planned_steps(train: dict, n_train: int | None) -> tuple[int | None, int]:
    """(steps per epoch, total steps) as `Trainer.__init__` computes them."""
    spe = math.ceil(n_train / train["batch_size"]) if n_train is not None else None
    if train["max_steps"] is not None:
        return spe, int(train["max_steps"])
    return spe, int(train["epochs"]) * spe


def _generated(name: str, options: dict, folder: Path) -> Path:
    """A generated dataset (tiny-*) made with the profile's options, as the workflow's `data` rule does."""
    from mat.data.cli import add_arguments, run

    p = argparse.ArgumentParser()
    add_arguments(p)
    argv = ["get", name, "--out", str(folder), "--no-progress"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    said = io.StringIO()  # the data CLI lists every file it wrote; keep this script's output a table
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        status = run(p.parse_args(argv))
    if status != 0:
        raise SystemExit(f"gpu_hours: could not generate {name} (python -m mat data {' '.join(argv)}):\n{said.getvalue()}")
    return folder


class Datasets:
    """n_train and the vocabulary of a run's data, per (folder, vocab, seq_len); see the module doc."""

    def __init__(self, profile: dict, root: Path, scratch: Path):
        self.profile, self.root, self.scratch = profile, root, scratch
        self._cache: dict[tuple, tuple[int, int | None, str, bool]] = {}

    def _folder(self, cfg: dict) -> tuple[Path | None, str]:
        data = cfg["data"]
        folder = Path(data["dir"])
        folder = folder if folder.is_absolute() else self.root / folder
        if (folder / "mat-data.json").is_file():
            return folder, f"counted from {data['dir']}"
        if data["name"].startswith("tiny-"):
            ds = next((k for k, v in self.profile["datasets"].items() if v["name"] == data["name"]), data["name"])
            options = self.profile["datasets"].get(ds, {}).get("options", {})
            return _generated(data["name"], options, self.scratch / ds), "counted from data generated here (profile options)"
        return None, ""

    def describe(self, cfg: dict) -> tuple[int, int | None, str, bool]:
        """(n_train, vocabulary of the loaded data or None, where n_train came from, whether exact)."""
        data = cfg["data"]
        text = data["name"] not in IMAGE_DATASETS
        key = (data["name"], data["dir"], data.get("vocab_size"), data.get("seq_len"))
        if key in self._cache:
            return self._cache[key]
        folder, source = self._folder(cfg)
        if folder is not None and text:
            from mat.data import load_text

            t = load_text(folder, data["vocab_size"], data["seq_len"], cache_dir=data.get("cache_dir"))  # the trainer's cache
            out = (int(t.train.shape[0]), int(t.vocab_size), source, True)
        elif folder is not None:
            from mat.data import load_images

            out = (int(load_images(folder).train_x.shape[0]), None, source, True)
        elif data["name"] == "cifar10":
            out = (CIFAR10_TRAIN_IMAGES, None, "documented: CIFAR-10 has 50,000 training images", True)
        else:
            words = WIKITEXT_TRAIN_WORDS[data["name"]]
            n = words // (data["seq_len"] - 1)
            out = (n, None, f"lower bound: {words:,} documented training words (Merity et al. 2016) "
                            f"/ {data['seq_len'] - 1} tokens per sequence; our WordPiece stream is longer", False)
        self._cache[key] = out
        return out


# ---------------------------------------------------------------------------------- FLOPs
class StepFlops:
    """FLOPs of one vanilla training step (forward + full backward), cached per (model, shape)."""

    def __init__(self, device: str = "meta"):
        self.device = device
        self._cache: dict[str, int] = {}

    def __call__(self, model_cfg: dict, shape: tuple[int, ...], text: bool) -> int:
        key = json.dumps([model_cfg, shape], sort_keys=True)
        if key not in self._cache:
            torch.manual_seed(0)
            with torch.device(self.device):
                model = build_model(model_cfg)
            x = torch.zeros(shape, dtype=torch.long if text else torch.float32, device=self.device)
            c = count_step(model, x)
            self._cache[key] = c["fwd"] + c["bwd"]
        return self._cache[key]


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


def plan(cfg: dict, datasets: Datasets, flops: StepFlops) -> dict:
    """One run's steps and vanilla FLOPs (the CSV's per-run columns) from its resolved run config."""
    train, data = cfg["train"], cfg["data"]
    text = data["name"] not in IMAGE_DATASETS
    n_train, vocab, source, exact = datasets.describe(cfg)
    if train["max_steps"] is not None and not exact:
        n_train, source = None, "not needed: a step budget (train.max_steps)"
    bs = train["batch_size"]
    if text:
        vocab = vocab or data["vocab_size"]
        model_cfg = {**cfg["model"], "vocab_size": vocab}
        shape = lambda b: (b, data["seq_len"])  # noqa: E731
    else:
        model_cfg, shape = dict(cfg["model"]), lambda b: (b, 3, 32, 32)  # noqa: E731
    spe, steps = planned_steps(train, n_train)
    per_step = flops(model_cfg, shape(bs), text)
    # The trainer's last step of an epoch takes the n_train - (spe - 1) x bs examples left over
    # (known only when n_train is exact; otherwise every batch is counted full).
    last = n_train - (spe - 1) * bs if exact and n_train is not None else bs
    short = steps // spe if last < bs else 0  # steps that end an epoch
    per_run = (steps - short) * per_step + (short * flops(model_cfg, shape(last), text) if short else 0)
    notes = ["vanilla step FLOPs (an upper bound for the other methods); mNTK, SNIP and evaluation not counted"]
    if not (exact and n_train is not None):
        notes.append("every batch counted full (the epoch's last, shorter batch is unknown without the data)")
    if text and vocab == data["vocab_size"] and not source.startswith("counted"):
        notes.append("vocabulary as configured (the trained tokenizer may have fewer pieces)")
    return {
        "model": " ".join(f"{k}={v}" for k, v in cfg["model"].items()),
        "batch_shape": "x".join(map(str, shape(bs))), "vocab": vocab if text else "",
        "n_train": "" if n_train is None else n_train, "n_train_source": source,
        "steps_per_epoch": "" if spe is None else spe, "epochs": train["epochs"] or "",
        "max_steps": train["max_steps"] or "", "steps_per_run": steps, "last_batch": last if short else "",
        "flops_per_step": per_step, "flops_per_run": per_run, "notes": "; ".join(notes),
    }


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
