"""What Table 3 measures in one image-classification run.

- Computation until train accuracy >= n: the cumulative compute at the first logged train row whose
  accuracy (averaged over its logging interval) reaches n; None if no row does ("not reached").
- Test accuracy at convergence: the best test evaluation. As in the paper, CIFAR-10 has no
  validation split here, so the point is picked on the test set itself (optimistic; said in the
  table's footnote).
- Computation: the cumulative compute until that evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

from mat.report.lm_measures import COMPUTE, COMPUTE_PAPER
from mat.report.runs import RunMetrics


@dataclass(frozen=True)
class BestTest:
    step: int
    accuracy: float  # fraction in [0, 1]
    flops: float
    flops_paper: float


def flops_to_train_accuracy(run: RunMetrics, target: float) -> float | None:
    """Compute until the first train row with accuracy >= target; None if never reached."""
    train = run.split("train")
    hit = train[train["accuracy"] >= target]
    if hit.empty:
        return None
    return float(hit.iloc[0][COMPUTE])


def best_test(run: RunMetrics) -> BestTest:
    """The test evaluation with the highest accuracy (the earliest on ties)."""
    test = run.split("test")
    best = test.loc[test["accuracy"].idxmax()]
    return BestTest(int(best["step"]), float(best["accuracy"]), float(best[COMPUTE]), float(best[COMPUTE_PAPER]))
