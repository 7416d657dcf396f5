"""Read the finished runs of one experiment: every (method, seed) the profile lists, or a clear error.

A finished run folder `results/<profile>/runs/<experiment>/<method>/seed<N>/` follows the run-folder
contract (`mat.run_folder`): `metrics.csv` (one row per logged train interval or evaluation, with
cumulative compute columns) and `summary.json` (written last by the trainer, so its presence marks a
run as finished), among others. The report
reads `metrics.csv` only; everything in a table is recomputed from it, so a table never depends on a
number the trainer summarised in some other way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mat import profiles, run_folder
from mat.run_folder import METRICS, SPLITS, SUMMARY

PFLOP = 1e15  # 1 PFLOPs = 10^15 FLOPs (Sec. 5.1)
# What the report reads from metrics.csv; the trainer writes more (flops_fwd, wall_seconds, ...).
REQUIRED_COLUMNS = ("step", "split", "loss", "accuracy", "flops_total_noemb", "flops_paper_estimate")


class ReportInputError(ValueError):
    """A run the report needs is missing, unfinished or malformed."""


@dataclass(frozen=True)
class RunMetrics:
    """The metrics of one finished run, split by kind of row."""

    method: str
    seed: int
    dir: Path
    metrics: pd.DataFrame  # all rows, in file order
    summary: dict = field(default_factory=dict, compare=False)  # summary.json (steps_per_epoch, ...)

    def split(self, name: str) -> pd.DataFrame:
        """Rows of one split (train|valid|test) in step order."""
        rows = self.metrics[self.metrics["split"] == name]
        return rows.sort_values("step", kind="stable").reset_index(drop=True)

    @property
    def final_flops(self) -> float:
        """Compute spent by the whole run (the largest cumulative value logged)."""
        return float(self.metrics["flops_total_noemb"].max())


def _read_metrics(run_dir: Path, need_splits: tuple[str, ...], need_accuracy: bool) -> pd.DataFrame:
    path = run_dir / METRICS
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReportInputError(f"{path}: not a readable CSV file: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ReportInputError(f"{path}: missing columns {missing}; found {list(df.columns)}")
    bad_split = sorted(set(df["split"].astype(str)) - set(SPLITS))
    if bad_split:
        raise ReportInputError(f"{path}: column 'split' has {bad_split}; expected only {list(SPLITS)}")
    for split in need_splits:
        if not (df["split"] == split).any():
            raise ReportInputError(f"{path}: no rows with split={split!r}; the report needs them")
    numeric = ["step", "loss", "flops_total_noemb", "flops_paper_estimate"] + (["accuracy"] if need_accuracy else [])
    used = df["split"].isin(need_splits)
    for col in numeric:
        values = pd.to_numeric(df.loc[used, col], errors="coerce")
        if values.isna().any():
            first = int(values.index[values.isna()][0])
            raise ReportInputError(
                f"{path}: column {col!r} has a missing or non-numeric value at data row {first + 1} "
                f"(split={df.loc[first, 'split']!r}); expected a number"
            )
        df[col] = pd.to_numeric(df[col], errors="coerce")
    if need_accuracy:
        acc = df.loc[used, "accuracy"]
        if ((acc < 0) | (acc > 1)).any():
            raise ReportInputError(f"{path}: column 'accuracy' has values outside [0, 1]; expected a fraction")
    return df


def load_experiment(
    root: str | Path, profile: dict, experiment: str, need_splits: tuple[str, ...], need_accuracy: bool = False
) -> dict[str, list[RunMetrics]]:
    """Every run of `experiment` in `profile`, keyed by method (profile order), seeds in profile order.

    All problems are collected first and raised together, each naming the run folder and what is
    missing, so one failing `python -m mat table` tells the whole story.
    """
    if experiment not in profile["experiments"]:
        raise ReportInputError(
            f"profile {profile['profile']!r} has no experiment {experiment!r}; "
            f"expected one of {sorted(profile['experiments'])}"
        )
    root = Path(root)
    out: dict[str, list[RunMetrics]] = {}
    problems: list[str] = []
    for run in profiles.runs(profile, [experiment]):
        run_dir = root / run.dir
        files = [run_dir / METRICS, run_dir / SUMMARY]
        absent = [f.name for f in files if not f.is_file()]
        if not run_dir.is_dir():
            problems.append(f"{run_dir}: run folder missing (train it: method {run.method!r}, seed {run.seed})")
            continue
        if absent:
            problems.append(f"{run_dir}: missing {', '.join(absent)} (the run has not finished)")
            continue
        try:
            summary = run_folder.read_summary(run_dir)
            df = _read_metrics(run_dir, need_splits, need_accuracy)
        except json.JSONDecodeError as exc:
            problems.append(f"{run_dir / SUMMARY}: not valid JSON: {exc}")
            continue
        except ReportInputError as exc:
            problems.append(str(exc))
            continue
        out.setdefault(run.method, []).append(
            RunMetrics(run.method, run.seed, run_dir, df, summary if isinstance(summary, dict) else {})
        )
    if problems:
        raise ReportInputError(
            f"cannot build the report for experiment {experiment!r} of profile {profile['profile']!r}:\n  "
            + "\n  ".join(problems)
        )
    return out


def mat_evaluations(run_dir: str | Path) -> list[int] | None:
    """The epochs of MAT's mNTK evaluations in a finished run (summary.json `mat_evaluations`, written
    by the trainer); None when the run did not record them (another method, or an older run)."""
    path = Path(run_dir) / SUMMARY
    try:
        record = run_folder.read_summary(run_dir).get("mat_evaluations")
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"{path}: cannot read the run's summary: {exc}") from exc
    if record is None:
        return None
    epochs = record.get("epochs") if isinstance(record, dict) else None
    if not isinstance(epochs, list) or record.get("count") != len(epochs):
        raise ReportInputError(f"{path}: 'mat_evaluations' is {record!r}; expected {{'count': n, 'epochs': [n epochs]}}")
    return [int(e) for e in epochs]


def pflops(flops: float) -> float:
    return flops / PFLOP if not math.isnan(flops) else math.nan
