"""What Tables 1 and 2 measure in one language-model run (Sec. 5 "Evaluation Measure").

- Validation loss at a compute budget: the last evaluation whose cumulative compute is within the
  budget (training efficiency: "the validation error ... after a certain number of FLOPs").
- Test loss at convergence: the test loss at the evaluation with the best validation loss (the
  test set is never used to pick the point).
- Computation: the cumulative compute at that evaluation ("the FLOPs used until achieving the best
  test loss"), without embeddings as the paper reports, and by the paper's estimator beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from mat.report.runs import ReportInputError, RunMetrics

COMPUTE = "flops_total_noemb"  # the paper's "FLOPs ... per GPU without embedding"
COMPUTE_PAPER = "flops_paper_estimate"  # forward measured, backward = 2 x forward (DeepSpeed)


@dataclass(frozen=True)
class Convergence:
    step: int
    valid_loss: float
    test_loss: float
    flops: float
    flops_paper: float


@dataclass(frozen=True)
class AtBudget:
    loss: float  # NaN when no evaluation lies within the budget
    step: int | None
    ended_early: bool  # the run stopped before spending the budget (MAT, Algorithm 1 line 2)


def convergence(run: RunMetrics) -> Convergence:
    """The evaluation with the lowest validation loss (the earliest on ties) and its test loss."""
    valid, test = run.split("valid"), run.split("test")
    best = valid.loc[valid["loss"].idxmin()]
    step = int(best["step"])
    match = test[test["step"] == step]
    if match.empty:
        raise ReportInputError(
            f"{run.dir / 'metrics.csv'}: the best validation loss is at step {step}, "
            f"but there is no test row at that step; expected valid and test rows at every evaluation"
        )
    t = match.iloc[0]
    return Convergence(step, float(best["loss"]), float(t["loss"]), float(best[COMPUTE]), float(best[COMPUTE_PAPER]))


def valid_loss_at_budget(run: RunMetrics, budget_flops: float) -> AtBudget:
    """Validation loss of the last evaluation whose cumulative compute is <= `budget_flops`.

    A run that ended before the budget (its total compute is below it) gives its last evaluation,
    flagged, so the table can say so rather than silently comparing unequal budgets.
    """
    valid = run.split("valid")
    within = valid[valid[COMPUTE] <= budget_flops]
    ended_early = run.final_flops < budget_flops
    if within.empty:
        return AtBudget(math.nan, None, ended_early)
    last = within.iloc[-1]
    return AtBudget(float(last["loss"]), int(last["step"]), ended_early)


def evaluations(run: RunMetrics, split: str, value: str = "loss") -> pd.DataFrame:
    """(compute, value) of one split's rows, in step order (for the curves)."""
    rows = run.split(split)
    return pd.DataFrame({"flops": rows[COMPUTE].to_numpy(float), value: rows[value].to_numpy(float)})
