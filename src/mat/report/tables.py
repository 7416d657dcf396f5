"""Build a paper table from finished runs and write its CSV and Markdown (atomically, both or none).

Which builder makes a table follows from the experiment's `report:` block, not from the table's
name: compute budgets (`budgets_pflops` / `budget_fractions`) make the language-model shape of
Tables 1-2, train-accuracy targets (`train_accuracy_targets`) the vision shape of Table 3.
"""

from __future__ import annotations

from pathlib import Path

from mat.report import lm_table, vision_table
from mat.report.io import write_all_atomic
from mat.report.render import to_csv, to_markdown
from mat.report.runs import ReportInputError
from mat.report.table_model import Table
from mat.report.targets import TARGETS, available


def table_experiment(name: str, profile: dict) -> str:
    """The one experiment a table reads, checked against the registry and the profile."""
    target = TARGETS.get(name)
    if target is None or target.kind != "table":
        tables = [t.name for t in TARGETS.values() if t.kind == "table"]
        raise ReportInputError(f"unknown table {name!r}; expected one of {tables}")
    if target not in available(profile["experiments"]):
        raise ReportInputError(
            f"table {name!r} needs experiments {list(target.experiments)}, which profile "
            f"{profile['profile']!r} does not have (it has {sorted(profile['experiments'])})"
        )
    return target.experiments[0]


def build_table(name: str, profile: dict, root: str | Path = ".") -> Table:
    experiment = table_experiment(name, profile)
    report = profile["experiments"][experiment].get("report") or {}
    if "budgets_pflops" in report or "budget_fractions" in report:
        return lm_table.build(name, profile, experiment, root)
    if "train_accuracy_targets" in report:
        return vision_table.build(name, profile, experiment, root)
    raise ReportInputError(
        f"profile {profile['profile']!r}, experiments.{experiment}.report: expected 'budgets_pflops' or "
        f"'budget_fractions' (a language-model table) or 'train_accuracy_targets' (Table 3), got {sorted(report)}"
    )


def table_paths(name: str, profile: dict, root: str | Path = ".") -> tuple[Path, Path]:
    out = Path(root) / "results" / profile["profile"]
    return out / f"{name}.csv", out / f"{name}.md"


def write_table(name: str, profile: dict, root: str | Path = ".") -> tuple[Path, Path]:
    """Build the table, then write `results/<profile>/<name>.csv` and `.md`; nothing on error."""
    table = build_table(name, profile, root)
    csv_path, md_path = table_paths(name, profile, root)
    write_all_atomic({csv_path: to_csv(table), md_path: to_markdown(table)})
    return csv_path, md_path
