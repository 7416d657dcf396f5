"""The compute budgets at which Tables 1 and 2 read the validation loss.

The paper reads it at fixed PFLOPs (10/15/20 for Table 1, 200/400/600 for Table 2). A smaller
profile spends far less compute, so it states its budgets as fractions of the vanilla model's
"Computation" column (the paper's budgets are those fractions of its vanilla runs: 10/28.7 = 0.348,
...). An experiment's `report:` block gives one of:
  budgets_pflops:   [10, 15, 20]            (absolute, the paper profile)
  budget_fractions: [0.348, 0.523, 0.697]   (times the mean vanilla computation)
"""

from __future__ import annotations

from dataclasses import dataclass

from mat.report.runs import PFLOP, ReportInputError


@dataclass(frozen=True)
class Budget:
    flops: float
    fraction: float | None  # of the vanilla computation; None for an absolute budget

    @property
    def pflops(self) -> float:
        return self.flops / PFLOP

    @property
    def header(self) -> str:
        if self.fraction is None:
            return f"@ {self.pflops:g} PFLOPs"
        return f"@ {self.fraction:g} × vanilla ({self.pflops:.3g} PFLOPs)"


def budget_spec(profile: dict, experiment: str) -> tuple[str, list[float]]:
    """('pflops' | 'fractions', numbers) from the experiment's report block, validated."""
    report = profile["experiments"][experiment].get("report") or {}
    where = f"profile {profile['profile']!r}, experiments.{experiment}.report"
    keys = [k for k in ("budgets_pflops", "budget_fractions") if k in report]
    if len(keys) != 1:
        raise ReportInputError(
            f"{where}: expected exactly one of 'budgets_pflops' or 'budget_fractions', got {keys or 'neither'}"
        )
    values = report[keys[0]]
    if not isinstance(values, list) or not values or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise ReportInputError(f"{where}.{keys[0]}: expected a non-empty list of positive numbers, got {values!r}")
    if list(values) != sorted(values):
        raise ReportInputError(f"{where}.{keys[0]}: expected increasing budgets, got {values!r}")
    return ("pflops" if keys[0] == "budgets_pflops" else "fractions"), [float(v) for v in values]


def budgets(profile: dict, experiment: str, vanilla_computation_flops: float | None) -> list[Budget]:
    """The experiment's budgets in FLOPs; fractions need the mean vanilla computation."""
    kind, values = budget_spec(profile, experiment)
    if kind == "pflops":
        return [Budget(v * PFLOP, None) for v in values]
    if vanilla_computation_flops is None:
        raise ReportInputError(
            f"experiments.{experiment}.report.budget_fractions needs the vanilla method's runs "
            f"(budgets are fractions of its computation), but the experiment has no 'vanilla' method"
        )
    return [Budget(v * vanilla_computation_flops, v) for v in values]
