"""Build a paper table from finished runs and write its CSV and Markdown (atomically, both or none).

Which builder makes a table follows from the experiment's `report:` block, not from the table's
name: compute budgets (`budgets_pflops` / `budget_fractions`) make the language-model shape of
Tables 1-2, train-accuracy targets (`train_accuracy_targets`) the vision shape of Table 3.
The appendix tables are built by name: Table 5 (`pruning_table`), Table 6 (`complexity_table`,
measured here, no runs) and Table 7 (`scaling_table`, sizes as Markdown columns).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mat.report import lm_table, mat_evaluations, pruning_table, scaling_table, vision_table
from mat.report.io import write_all_atomic
from mat.report.render import to_csv, to_markdown
from mat.report.runs import ReportInputError
from mat.report.table_model import Table
from mat.report.targets import TARGETS, available

if TYPE_CHECKING:
    from mat.report.complexity_table import ComplexityReport


APPENDIX_TABLES = ("table5", "table6", "table7")  # built by name: pruning, complexity, scaling


def table_experiment(name: str, profile: dict) -> str:
    """The one experiment a table reads, checked against the registry and the profile."""
    return table_target(name, profile).experiments[0]


def table_target(name: str, profile: dict):
    """The registry entry of a table, checked against the profile."""
    target = TARGETS.get(name)
    if target is None or target.kind != "table":
        tables = [t.name for t in TARGETS.values() if t.kind == "table"]
        raise ReportInputError(f"unknown table {name!r}; expected one of {tables}")
    if target not in available(profile["experiments"]):
        raise ReportInputError(
            f"table {name!r} needs experiments {list(target.experiments)}, which profile "
            f"{profile['profile']!r} does not have (it has {sorted(profile['experiments'])})"
        )
    return target


def build_table(name: str, profile: dict, root: str | Path = ".") -> Table | ComplexityReport:
    """The table as data: a `Table`, or for Table 6 a `complexity_table.ComplexityReport`."""
    if name in APPENDIX_TABLES:
        table = _build_appendix(name, profile, root)
        if name == "table6":  # measured here, no runs
            return table
        return mat_evaluations.annotate(table, profile, list(table_target(name, profile).experiments), root)
    experiment = table_experiment(name, profile)
    report = profile["experiments"][experiment].get("report") or {}
    if "budgets_pflops" in report or "budget_fractions" in report:
        return mat_evaluations.annotate(lm_table.build(name, profile, experiment, root), profile, [experiment], root)
    if "train_accuracy_targets" in report:
        return mat_evaluations.annotate(vision_table.build(name, profile, experiment, root), profile, [experiment], root)
    raise ReportInputError(
        f"profile {profile['profile']!r}, experiments.{experiment}.report: expected 'budgets_pflops' or "
        f"'budget_fractions' (a language-model table) or 'train_accuracy_targets' (Table 3), got {sorted(report)}"
    )


def _build_appendix(name: str, profile: dict, root):
    target = table_target(name, profile)
    if name == "table5":
        return pruning_table.build(name, profile, target.experiments[0], root)
    if name == "table7":
        return scaling_table.build(name, profile, target.experiments, root)
    from mat.report import complexity_table  # torch loads only for the measured table

    return complexity_table.build(name, profile, root)


def table_paths(name: str, profile: dict, root: str | Path = ".") -> tuple[Path, Path]:
    out = Path(root) / "results" / profile["profile"]
    return out / f"{name}.csv", out / f"{name}.md"


def write_table(name: str, profile: dict, root: str | Path = ".") -> tuple[Path, Path]:
    """Build the table, then write `results/<profile>/<name>.csv` and `.md`; nothing on error."""
    if name == "table6":  # also writes its raw measurements
        from mat.report import complexity_table

        table_target(name, profile)
        return complexity_table.write(name, profile, root)
    table = build_table(name, profile, root)
    csv_path, md_path = table_paths(name, profile, root)
    md = scaling_table.to_markdown(table) if name == "table7" else to_markdown(table)
    write_all_atomic({csv_path: to_csv(table), md_path: md})
    return csv_path, md_path
