"""MAT's own cost: the FLOPs of its mNTK evaluations as a share of a MAT run's computation, per profile.

Issue 3's target: the MAT evaluation costs at most 1% of the training run's compute in the tiny and
small profiles (the paper reports about 1.5%). For every MAT run of a profile (methods `mat` and
`mat_prune`):

    evaluations      the epochs at which the policy asks for an mNTK (`policy._needs_mntk`: from
                     start_epoch every interval epochs, plus mat_prune's pruning epoch), over the
                     run's planned epochs -- an upper bound: MAT stops when nothing is left to train
    FLOPs per eval   the project's mNTK (`mat.ntk.module_grams`: S per-sample gradients and the
                     Grams of every module of the run's partition, in as many passes as the run's
                     `ntk.memory_gb` implies, each counted: a pass runs only its own stages, plus
                     one forward caching the passes' input boundaries, `mat.ntk_stages`), counted
                     with FlopCounterMode on
                     a shape-only ("meta") copy of the model: the same count as on a real one
                     (eigen-decompositions of the S x S Grams are not matmuls and count 0)
    training FLOPs   steps x one vanilla step (`mat.bench.forecast.plan`): an upper bound on a
                     MAT step, so the share below is slightly LOW where MAT freezes much
    share            evaluations x FLOPs per eval / (training FLOPs + evaluations x FLOPs per eval)

Where the profile's runs exist on disk (`results/<profile>/runs/<experiment>/<method>/seed*/
metrics.csv`, e.g. after `snakemake --cores all` for tiny), the measured share of the finished runs
is reported beside the plan: `flops_mntk / flops_total` on the last row (mat.flops; the mNTKs
logged only for the figures are not in either). Step counts of epoch-based WikiText runs are lower
bounds without the data (see `mat.bench.forecast`), which makes their planned share an upper bound.

    python benchmarks/mat_overhead.py                       # tiny, small, paper
    python benchmarks/mat_overhead.py --profiles tiny

Output: benchmarks/results/mat_overhead.csv (atomically), a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from mat.bench.forecast import Datasets, StepFlops, plan
from mat.models import build_model, build_partition
from mat.ntk import module_grams, passes
from mat.policies import build_policy
from mat.profiles import ProfileError, load_profile, run_config, runs
from mat.schedule import on_mat_schedule
from mat.atomic import write_csv_atomic
from mat.train.run_config import IMAGE_DATASETS, load_run_config

ROOT = Path(__file__).resolve().parents[1]

TARGET_SHARE = 0.01
FIELDS = (
    "profile", "experiment", "method", "model", "partition", "modules", "samples", "input_shape",
    "steps_per_run", "steps_per_epoch", "epochs", "evaluations", "eval_epochs", "memory_gb", "mntk_passes",
    "mntk_flops_per_eval",
    "train_flops", "planned_share", "measured_share", "measured_runs", "meets_1pct", "n_train_source",
)


def _meta_model(model_cfg: dict, kinds: list[str]):
    """(model on the meta device: shapes only, no arithmetic; its partition)."""
    torch.manual_seed(0)
    with torch.device("meta"):
        model = build_model(model_cfg)
    return model, build_partition(model, kinds)


def mntk_flops(
    model_cfg: dict, kinds: list[str], shape: tuple[int, ...], text: bool, chunk: int, memory_gb: float | None = None
) -> tuple[int, int]:
    """(FLOPs of one mNTK of every module of the partition on inputs of `shape`, modules), every
    pass that `memory_gb` (the run's `ntk.memory_gb`) implies counted."""
    model, part = _meta_model(model_cfg, kinds)
    x = torch.zeros(shape, dtype=torch.long if text else torch.float32, device="meta")
    with FlopCounterMode(display=False) as counter:
        module_grams(model, x, part, chunk_size=chunk, memory_gb=memory_gb)
    return int(counter.get_total_flops()), len(part)


def mntk_passes(model_cfg: dict, kinds: list[str], samples: int, memory_gb: float | None) -> int:
    """Passes of one mNTK within `memory_gb` (`mat.ntk_budget`)."""
    model, part = _meta_model(model_cfg, kinds)
    return len(passes(model, part, samples, memory_gb))


def evaluation_epochs(cfg: dict, model_cfg: dict, steps: int, spe: int) -> list[int]:
    """The epochs at which the run's MAT policy asks for an mNTK, over its planned epochs."""
    _, part = _meta_model(model_cfg, list(cfg["partition"]))
    policy = build_policy(cfg["method"], part, int(cfg["seed"]), spe)
    return [e for e in range(math.ceil(steps / spe)) if policy._needs_mntk(e)]


def measured(results: Path, experiment: str, method: str) -> tuple[float | None, int]:
    """(mean of flops_mntk / flops_total over the finished runs' last rows, number of runs)."""
    shares = []
    for path in sorted((results / "runs" / experiment / method).glob("seed*/metrics.csv")):
        last = pd.read_csv(path).iloc[-1]
        shares.append(float(last["flops_mntk"]) / float(last["flops_total"]))
    return (statistics.fmean(shares) if shares else None), len(shares)


def overhead_rows(profile: dict, datasets: Datasets, step_flops: StepFlops, results: Path) -> list[dict]:
    rows, seen = [], set()
    for r in runs(profile):
        cfg = load_run_config(run_config(profile, r.experiment, r.method, r.seed))
        if not on_mat_schedule(cfg["method"]) or (r.experiment, r.method) in seen:
            continue
        seen.add((r.experiment, r.method))
        p = plan(cfg, datasets, step_flops)
        steps = int(p["steps_per_run"])
        # Epoch length: plan's, or (a step-budget run without its data) from the same n_train rule;
        # a lower bound there, so more epochs and evaluations: the share is then an upper bound.
        n_train = datasets.describe(cfg)[0]
        spe = int(p["steps_per_epoch"] or math.ceil(n_train / cfg["train"]["batch_size"]))
        data, ncfg = cfg["data"], cfg["ntk"]
        text = data["name"] not in IMAGE_DATASETS
        s = ncfg["samples"]
        shape = (s, data["seq_len"]) if text else (s, 3, 32, 32)
        model_cfg = {**cfg["model"], "vocab_size": p["vocab"]} if text else dict(cfg["model"])
        kinds, gb = list(cfg["partition"]), ncfg["memory_gb"]
        per_eval, n_modules = mntk_flops(model_cfg, kinds, shape, text, ncfg["chunk_size"], gb)
        epochs = evaluation_epochs(cfg, model_cfg, steps, spe)
        mntk_total = len(epochs) * per_eval
        share = mntk_total / (p["flops_per_run"] + mntk_total)
        got, n_runs = measured(results, r.experiment, r.method)
        rows.append({
            "profile": profile["profile"], "experiment": r.experiment, "method": r.method, "model": p["model"],
            "partition": "+".join(cfg["partition"]), "modules": n_modules, "samples": s,
            "input_shape": "x".join(map(str, shape)), "steps_per_run": steps, "steps_per_epoch": spe,
            "epochs": math.ceil(steps / spe), "evaluations": len(epochs), "eval_epochs": " ".join(map(str, epochs)),
            "memory_gb": "null" if gb is None else gb, "mntk_passes": mntk_passes(model_cfg, kinds, s, gb),
            "mntk_flops_per_eval": per_eval, "train_flops": p["flops_per_run"], "planned_share": f"{share:.5f}",
            "measured_share": "" if got is None else f"{got:.5f}", "measured_runs": n_runs,
            "meets_1pct": (got if got is not None else share) <= TARGET_SHARE,
            "n_train_source": p["n_train_source"],
        })
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| profile | experiment | method | S | evaluations / epochs | passes per mNTK | GFLOPs per mNTK | planned share | measured share |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        got = f"{100 * float(r['measured_share']):.2f}% ({r['measured_runs']} runs)" if r["measured_share"] else "-"
        lines.append(
            f"| {r['profile']} | {r['experiment']} | {r['method']} | {r['samples']} | {r['evaluations']} / {r['epochs']} "
            f"| {r['mntk_passes']} "
            f"| {r['mntk_flops_per_eval'] / 1e9:,.2f} | {100 * float(r['planned_share']):.2f}% | {got} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profiles", nargs="+", default=["tiny", "small", "paper"])
    p.add_argument("--profile-dir", type=Path, default=ROOT / "config" / "profiles")
    p.add_argument("--root", type=Path, default=ROOT, help="where relative data and results folders are")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "mat_overhead.csv")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mat_overhead.") as scratch:
        for name in args.profiles:
            try:
                profile = load_profile(name, args.profile_dir)
            except ProfileError as e:
                raise SystemExit(f"mat_overhead: {e}") from None
            datasets = Datasets(profile, args.root, Path(scratch))
            rows += overhead_rows(profile, datasets, StepFlops("meta"), args.root / "results" / name)
    write_csv_atomic(args.out, rows, FIELDS)
    print(markdown(rows))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
