"""What Tables 1, 2, 5 and 7 measure in one language-model run (Sec. 5 "Evaluation Measure").

- Validation loss at a compute budget: read at the budget on the line between the two evaluations
  around it (`readouts`; training efficiency: "the validation error ... after a certain number of
  FLOPs"). A budget past the run's last evaluation is not read: the run ended before it.
- Convergence, as the paper defines it (Table 1/2 caption: "Computation refers to the FLOPs model
  used until achieving best test loss"): the evaluation with the best TEST loss, its test loss and
  the cumulative compute until it. `PICKS["test"]`.
- Convergence as we would pick it (ours, shown beside the paper's): the evaluation with the best
  VALIDATION loss, so that the test set does not choose the point. `PICKS["valid"]`.
Compute is without embeddings as the paper reports (`flops_total_noemb`), and by the paper's
accounting beside it (`flops_paper_estimate`, `mat.flops`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mat.report.readouts import AFTER_LAST, BEFORE_FIRST, READOUTS, value_at
from mat.report.runs import ReportInputError, RunMetrics

COMPUTE = "flops_total_noemb"  # the paper's "FLOPs ... per GPU without embedding"
COMPUTE_PAPER = "flops_paper_estimate"  # the paper's accounting: backward = 2 x forward of updated modules
PICKS = {"test": "best test loss (the paper's definition)", "valid": "best validation loss (ours)"}


@dataclass(frozen=True)
class Convergence:
    step: int
    valid_loss: float
    test_loss: float
    flops: float
    flops_paper: float


@dataclass(frozen=True)
class AtBudget:
    loss: float  # NaN when the budget is not inside the run's evaluations
    ended_early: bool  # the budget lies past the run's last evaluation (MAT, Algorithm 1 line 2)
    before_first: bool = False  # the budget lies before the run's first evaluation


def convergence(run: RunMetrics, pick: str = "test") -> Convergence:
    """The evaluation with the lowest test loss (`pick="test"`, the paper's) or validation loss
    (`pick="valid"`, ours), the earliest on ties; its losses and cumulative compute."""
    if pick not in PICKS:
        raise ValueError(f"convergence pick {pick!r}; expected one of {sorted(PICKS)}")
    valid, test = run.split("valid"), run.split("test")
    chosen = test if pick == "test" else valid
    best = chosen.loc[chosen["loss"].idxmin()]
    step = int(best["step"])
    other = valid if pick == "test" else test
    match = other[other["step"] == step]
    if match.empty:
        raise ReportInputError(
            f"{run.dir / 'metrics.csv'}: the best {pick} loss is at step {step}, but there is no "
            f"{'valid' if pick == 'test' else 'test'} row at that step; expected valid and test rows at every evaluation"
        )
    o = match.iloc[0]
    v, t = (o, best) if pick == "test" else (best, o)
    return Convergence(step, float(v["loss"]), float(t["loss"]), float(best[COMPUTE]), float(best[COMPUTE_PAPER]))


def valid_loss_at_budget(run: RunMetrics, budget_flops: float, readout: str = "interpolate") -> AtBudget:
    """Validation loss at `budget_flops` of cumulative compute (`readouts.value_at`): interpolated
    between the evaluations around it, or (readout "last_before") the last one at or below it."""
    valid = run.split("valid")
    r = value_at(valid[COMPUTE].to_numpy(float), valid["loss"].to_numpy(float), budget_flops, readout)
    return AtBudget(r.value, r.where == AFTER_LAST, r.where == BEFORE_FIRST)


def evaluations(run: RunMetrics, split: str, value: str = "loss") -> pd.DataFrame:
    """(compute, value) of one split's rows, in step order (for the curves)."""
    rows = run.split(split)
    return pd.DataFrame({"flops": rows[COMPUTE].to_numpy(float), value: rows[value].to_numpy(float)})


def budget_readout(profile: dict, experiment: str) -> str:
    """The experiment's `report.budget_readout` (default "interpolate"), validated."""
    value = (profile["experiments"][experiment].get("report") or {}).get("budget_readout", "interpolate")
    if value not in READOUTS:
        raise ReportInputError(
            f"profile {profile['profile']!r}, experiments.{experiment}.report.budget_readout: {value!r}; expected one of {list(READOUTS)}"
        )
    return value
