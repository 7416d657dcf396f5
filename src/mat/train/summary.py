"""The end of a run: `summary.json` (what the tables read first) and publishing the outputs.

The CSVs are copied from `OUT/.work/` into `OUT/` through temporary files and atomic renames, and
`summary.json` is written LAST: its presence means the run is complete. Until then `OUT/.work/`
(checkpoint included) is untouched, so a crash while publishing just resumes and republishes.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from mat.flops import COLUMNS as COMPUTE_COLUMNS
from mat.train.measure import mat_evaluations

if TYPE_CHECKING:
    from mat.train.loop import Trainer

OUTPUTS = ("metrics.csv", "mntk.csv", "modules.csv")


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def git_commit() -> str | None:
    """The commit of the code that ran (None outside a git checkout)."""
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def hardware(device: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": str(device), "cpu": cpu, "cpu_count": os.cpu_count(), "gpu": gpu}


def versions() -> dict:
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}


def _eval_point(row: pd.Series) -> dict:
    point = {"step": int(row["step"]), "epoch": int(row["epoch"]), "loss": _finite(row["loss"]),
             "accuracy": _finite(row["accuracy"])}
    point.update({c: int(row[c]) for c in COMPUTE_COLUMNS})
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


def _mat_evaluations(policy) -> dict | None:
    epochs = mat_evaluations(policy)
    return None if epochs is None else {"count": len(epochs), "epochs": epochs}


def _publish(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


MODEL_FILE = "model.pt"


def write_summary(trainer: "Trainer") -> dict:
    """Publish the CSVs into OUT and write OUT/summary.json last; returns the summary."""
    metrics = pd.read_csv(trainer.work / "metrics.csv")
    summary = {
        "name": trainer.cfg["name"],
        "config": trainer.cfg,
        "model": {**trainer.cfg["model"], **trainer.task.model_options()},  # build_model(this) + model.pt
        "seed": trainer.seed,
        "versions": versions(),
        "git_commit": git_commit(),
        "hardware": hardware(trainer.device),
        "steps": trainer.step,
        "total_steps": trainer.total_steps,
        "steps_per_epoch": trainer.steps_per_epoch,
        "epochs": math.ceil(trainer.step / trainer.steps_per_epoch),
        "n_train": trainer.task.n_train,
        "stopped_early": {"stopped": trainer.step < trainer.total_steps, "why": trainer.stopped_reason},
        # MAT's mNTK evaluations (Algorithm 1): Eq. 6 acts from the third (t >= 2); null for other methods
        "mat_evaluations": _mat_evaluations(trainer.policy),
        **results(metrics),
        "compute": trainer.meter.totals(),
        "wall_seconds": trainer.wall,
    }
    for name in OUTPUTS:
        _publish(trainer.work / name, trainer.out / name)
    # The final weights, versioned with the run by DVC (load with torch.load(..., weights_only=True)).
    weights = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    tmp = trainer.out / ".model.pt.tmp"
    torch.save(weights, tmp)
    os.replace(tmp, trainer.out / MODEL_FILE)
    tmp = trainer.out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, trainer.out / "summary.json")
    return summary
