"""The per-module logs of finished runs: `modules.csv` (steps each module was updated, per epoch;
pruned flags) and `mntk.csv` (mNTK eigenvalues per module at the start of logged epochs).

`runs.load_experiment` decides which runs exist and are finished (and reads metrics.csv); this file
reads the two other CSVs of those runs, checks the columns the appendix tables and figures use, and
says which file and column is wrong when one is.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mat.report.runs import ReportInputError, RunMetrics, load_experiment
from mat.run_folder import EIG_PREFIX, MNTK, MNTK_ID_COLUMNS, MODULES, MODULES_COLUMNS

MNTK_COLUMNS = MNTK_ID_COLUMNS  # what every mntk.csv has, whatever its ntk.top_k
_INT = ("epoch", "layer", "index", "steps_active", "steps", "step")
_FLOAT = ("lambda_max", "lambda_min", "effective_rank")
_BOOL = {"true": True, "false": False, "True": True, "False": False, "1": True, "0": False}


def _read(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise ReportInputError(f"{path}: missing (the trainer writes it with every finished run)")
    try:
        df = pd.read_csv(path, dtype={"pruned": str, "partition": str, "module": str, "kind": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReportInputError(f"{path}: not a readable CSV file: {exc}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ReportInputError(f"{path}: missing columns {missing}; found {list(df.columns)}")
    for col in [c for c in _INT + _FLOAT if c in df.columns and c in required]:
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any():
            row = int(values.index[values.isna()][0])
            raise ReportInputError(f"{path}: column {col!r} has a missing or non-numeric value at data row {row + 1}; expected a number")
        df[col] = values
    return df


def read_modules(run_dir: str | Path) -> pd.DataFrame:
    """modules.csv of one run, `pruned` as bool; rows sorted by (epoch, file order)."""
    path = Path(run_dir) / MODULES
    df = _read(path, MODULES_COLUMNS)
    bad = sorted(set(df["pruned"].astype(str)) - set(_BOOL))
    if bad:
        raise ReportInputError(f"{path}: column 'pruned' has {bad}; expected true/false")
    df["pruned"] = df["pruned"].astype(str).map(_BOOL).astype(bool)
    over = df[(df["steps_active"] < 0) | (df["steps_active"] > df["steps"])]
    if not over.empty:
        r = over.iloc[0]
        raise ReportInputError(
            f"{path}: module {r['module']!r} at epoch {int(r['epoch'])} has steps_active {int(r['steps_active'])} "
            f"outside [0, steps = {int(r['steps'])}]"
        )
    if df.empty:
        raise ReportInputError(f"{path}: no rows; expected one row per module and epoch")
    return df.sort_values("epoch", kind="stable").reset_index(drop=True)


def eig_columns(df: pd.DataFrame) -> list[str]:
    """The kept eigenvalue columns eig_0, eig_1, ... in order (the run's `ntk.top_k`)."""
    n = len(EIG_PREFIX)
    cols = [c for c in df.columns if c.startswith(EIG_PREFIX) and c[n:].isdigit()]
    return sorted(cols, key=lambda c: int(c[n:]))


def read_mntk(run_dir: str | Path, partition: str | None = None, need: tuple[str, ...] = ()) -> pd.DataFrame:
    """mntk.csv of one run (rows of one `partition` -- "head", "layer", ... -- when given).

    `need` names further columns that must be present and numeric in those rows (e.g.
    "effective_rank"). An empty selection is an error naming what the file does have."""
    path = Path(run_dir) / MNTK
    df = _read(path, MNTK_COLUMNS)
    if partition is not None:
        have = sorted(set(df["partition"].astype(str)))
        df = df[df["partition"].astype(str) == partition].reset_index(drop=True)
        if df.empty:
            raise ReportInputError(
                f"{path}: no rows with partition={partition!r} (the file has {have}); "
                f"log them with the run config's ntk.log_every / ntk.log_kinds"
            )
    for col in need:
        if col not in df.columns:
            raise ReportInputError(f"{path}: missing column {col!r}; found {list(df.columns)}")
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any():
            raise ReportInputError(f"{path}: column {col!r} is empty or non-numeric in {int(values.isna().sum())} selected rows; expected numbers")
        df[col] = values
    for col in eig_columns(df):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df.sort_values(["epoch"], kind="stable").reset_index(drop=True)


def load_runs(root, profile: dict, experiment: str, need_splits: tuple[str, ...] = ("valid", "test")) -> dict[str, list[RunMetrics]]:
    """The finished runs of an experiment (metrics checked), keyed by method; see `runs.load_experiment`."""
    return load_experiment(root, profile, experiment, need_splits=need_splits)


def first_run(runs: dict[str, list[RunMetrics]], method: str, experiment: str) -> RunMetrics:
    """The first seed's run of `method` (the figures that show one training run use it)."""
    if method not in runs or not runs[method]:
        raise ReportInputError(f"experiment {experiment!r} has no runs of method {method!r}; it has {sorted(runs)}")
    return runs[method][0]
