"""What Table 3 measures in one image-classification run.

- Computation until train accuracy = n: training accuracy per epoch (the mean over the epoch's
  steps, from metrics.csv's train rows, `epoch_train_accuracy`), placed at the cumulative compute
  at the epoch's end; the compute where that curve first reaches n, read on the line between the
  last epoch below n and the first at or above it (`readouts.first_crossing`; when the first epoch
  already reaches n, its end). None if no epoch does ("not reached"). The earlier reading, the
  first `log_every` window whose mean accuracy reaches n, is `report.train_accuracy_readout:
  log_window`.
- Test accuracy at convergence: the best test evaluation. As in the paper, CIFAR-10 has no
  validation split here, so the point is picked on the test set itself (optimistic; said in the
  table's footnote).
- Computation: the cumulative compute until that evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mat.report.lm_measures import COMPUTE, COMPUTE_PAPER
from mat.report.readouts import first_crossing
from mat.report.runs import ReportInputError, RunMetrics

MNTK = "flops_mntk"  # measurements at epoch starts: a lump in the cumulative compute, not a slope
TRAIN_READOUTS = ("epoch", "log_window")


@dataclass(frozen=True)
class BestTest:
    step: int
    accuracy: float  # fraction in [0, 1]
    flops: float
    flops_paper: float


def compute_at_step(run: RunMetrics, step: float) -> float:
    """Cumulative compute after `step` training steps, from the logged rows (any split).

    A logged step gives its value. Between two logged steps a < step < b the training steps' compute
    (`flops_total_noemb` minus `flops_mntk`) is interpolated linearly in steps, and the measurements
    logged by a are added: a measurement taken at the start of a later epoch (inside b's value) is not
    spread back over the steps before it. After the last logged step: its value."""
    rows = run.metrics.sort_values("step", kind="stable").drop_duplicates("step")
    x = rows["step"].to_numpy(float)
    c = rows[COMPUTE].to_numpy(float)
    m = pd.to_numeric(rows[MNTK], errors="coerce").fillna(0).to_numpy(float) if MNTK in rows else np.zeros_like(c)
    j = int(np.searchsorted(x, step, side="left"))
    if j < x.size and x[j] == step:
        return float(c[j])
    if j >= x.size:
        return float(c[-1])
    a_step, a_c, a_m = (0.0, 0.0, 0.0) if j == 0 else (x[j - 1], c[j - 1], m[j - 1])
    s_a, s_b = a_c - a_m, c[j] - m[j]
    return float(s_a + (s_b - s_a) * (step - a_step) / (x[j] - a_step) + a_m)


def epoch_train_accuracy(run: RunMetrics) -> pd.DataFrame:
    """Per epoch: steps, mean training accuracy over its steps, cumulative compute at its end.

    A train row holds the mean accuracy of the steps since the previous train row (its `log_every`
    window). Each window's steps are attributed to the epochs they belong to (`steps_per_epoch` from
    summary.json; a window across an epoch boundary is split by its steps, its mean given to both
    parts), and an epoch's accuracy is the step-weighted mean of its parts. Without
    `steps_per_epoch` a window belongs to the epoch its row names. (Steps, not examples, weigh the
    windows: they differ only in an epoch's last, smaller batch.)"""
    train = run.split("train")
    if train.empty:
        raise ReportInputError(f"{run.dir}/metrics.csv: no train rows; Table 3 reads training accuracy from them")
    spe = run.summary.get("steps_per_epoch")
    steps = train["step"].to_numpy(int)
    acc = train["accuracy"].to_numpy(float)
    starts = np.concatenate([[0], steps[:-1]])
    weight: dict[int, float] = {}
    total: dict[int, float] = {}
    end: dict[int, int] = {}
    for i, (a, b) in enumerate(zip(starts, steps)):
        if spe:
            parts = [(k, min(b, (k + 1) * spe) - max(a, k * spe)) for k in range(a // spe, (b - 1) // spe + 1)]
        else:
            parts = [(int(train["epoch"].iloc[i]), b - a)]
        for k, w in parts:
            weight[k] = weight.get(k, 0) + w
            total[k] = total.get(k, 0.0) + w * acc[i]
            end[k] = max(end.get(k, 0), min(b, (k + 1) * spe) if spe else b)
    epochs = sorted(weight)
    return pd.DataFrame({
        "epoch": epochs,
        "steps": [weight[k] for k in epochs],
        "accuracy": [total[k] / weight[k] for k in epochs],
        "flops": [compute_at_step(run, end[k]) for k in epochs],
    })


def flops_to_train_accuracy(run: RunMetrics, target: float, readout: str = "epoch") -> float | None:
    """Compute until training accuracy first reaches `target`; None if never (module docstring)."""
    if readout not in TRAIN_READOUTS:
        raise ValueError(f"train accuracy readout {readout!r}; expected one of {TRAIN_READOUTS}")
    if readout == "log_window":
        train = run.split("train")
        hit = train[train["accuracy"] >= target]
        return None if hit.empty else float(hit.iloc[0][COMPUTE])
    epochs = epoch_train_accuracy(run)
    return first_crossing(epochs["flops"], epochs["accuracy"], target)


def best_test(run: RunMetrics) -> BestTest:
    """The test evaluation with the highest accuracy (the earliest on ties)."""
    test = run.split("test")
    best = test.loc[test["accuracy"].idxmax()]
    return BestTest(int(best["step"]), float(best["accuracy"]), float(best[COMPUTE]), float(best[COMPUTE_PAPER]))
