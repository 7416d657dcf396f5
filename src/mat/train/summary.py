"""The end of a run: `summary.json` (what the tables read first) and publishing the outputs.

`write_summary` takes plain data -- the run's `RunRecord` and its work and output folders -- and
publishes through the run-folder contract (`mat.run_folder.publish`): the CSVs copied from
`OUT/.work/` into `OUT/`, the final weights, and `summary.json` LAST: its presence means the run is
complete. Until then `OUT/.work/` (checkpoint included) is untouched, so a crash while publishing
just resumes and republishes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from mat import run_folder
from mat.provenance import git_commit, hardware, versions
from mat.train.plan import RunPlan

__all__ = ["RunRecord", "results", "summary", "write_summary"]


@dataclass(frozen=True)
class RunRecord:
    """What a finished run reports about itself (everything in summary.json but the results,
    which come from metrics.csv)."""

    cfg: dict  # the resolved run config
    model: dict  # the model config build_model was given (the config's plus the data's, e.g. vocab_size)
    device: torch.device
    plan: RunPlan
    steps: int  # steps taken (fewer than planned when the policy stopped early)
    stopped_reason: str | None
    mat_evaluations: list[int] | None  # epochs of MAT's mNTK evaluations; None for other methods
    compute: dict  # the FLOPs meter's totals (mat.flops)
    wall_seconds: float


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _eval_point(row: pd.Series) -> dict:
    point = {"step": int(row["step"]), "epoch": int(row["epoch"]), "loss": _finite(row["loss"]),
             "accuracy": _finite(row["accuracy"])}
    point.update({c: int(row[c]) for c in run_folder.COMPUTE_COLUMNS})
    return point


def results(metrics: pd.DataFrame) -> dict:
    """Best and final numbers from metrics.csv.

    Text (valid + test): the best validation loss, its step, and the test loss/accuracy at that
    step. Images (test only, as the paper's Table 3): the best and the final test accuracy."""
    out: dict = {"final": {}}
    for split, rows in metrics.groupby("split", sort=True):
        out["final"][split] = _eval_point(rows.sort_values("step").iloc[-1])
    valid, test = metrics[metrics.split == "valid"], metrics[metrics.split == "test"]
    if len(valid):
        best = valid.loc[valid["loss"].idxmin()]
        at = test[test.step == best.step]
        out["best_valid"] = _eval_point(best)
        out["best_valid"]["test_loss"] = _finite(at["loss"].iloc[0]) if len(at) else None
        out["best_valid"]["test_accuracy"] = _finite(at["accuracy"].iloc[0]) if len(at) else None
    elif len(test):
        out["best_test_accuracy"] = _eval_point(test.loc[test["accuracy"].idxmax()])
    return out


def summary(record: RunRecord, metrics: pd.DataFrame) -> dict:
    """summary.json's content (keys in `mat.run_folder.SUMMARY_KEYS` order, then the results)."""
    cfg, plan, evals = record.cfg, record.plan, record.mat_evaluations
    return {
        "name": cfg["name"],
        "config": cfg,
        "model": record.model,  # build_model(this) + model.pt
        "seed": int(cfg["seed"]),
        "versions": versions(),
        "git_commit": git_commit(),
        "hardware": hardware(record.device),
        "steps": record.steps,
        "total_steps": plan.total_steps,
        "steps_per_epoch": plan.steps_per_epoch,
        "epochs": plan.epochs_run(record.steps),
        "n_train": plan.n_train,
        "stopped_early": {"stopped": record.steps < plan.total_steps, "why": record.stopped_reason},
        # MAT's mNTK evaluations (Algorithm 1): Eq. 6 acts from the third (t >= 2); null for other methods
        "mat_evaluations": None if evals is None else {"count": len(evals), "epochs": evals},
        **results(metrics),
        "compute": record.compute,
        "wall_seconds": record.wall_seconds,
    }


def write_summary(record: RunRecord, work: Path, out: Path, weights: dict[str, torch.Tensor]) -> dict:
    """Publish the run in `work` into `out` (logs, `weights` as model.pt, summary.json last);
    returns the summary. The weights load with torch.load(..., weights_only=True)."""
    content = summary(record, pd.read_csv(Path(work) / run_folder.METRICS))
    save: Callable[[Path], None] = lambda path: torch.save(weights, path)  # noqa: E731
    run_folder.publish(work, out, content, save)
    return content
