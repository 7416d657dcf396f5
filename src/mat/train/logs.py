"""Tidy CSV logs that survive interruption: appended row by row, truncated back on resume.

A run writes its CSVs under `OUT/.work/` while it trains. A checkpoint records how many rows each
file had; a resumed run cuts every file back to that count, so rows written after the checkpoint
(and lost with the interrupted process's state) are written again exactly once.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Mapping, Sequence

from mat import run_folder
from mat.atomic import write_atomic

# The columns of each log are the run-folder contract's (`mat.run_folder`).
METRICS_COLUMNS, MODULES_COLUMNS, mntk_columns = run_folder.METRICS_COLUMNS, run_folder.MODULES_COLUMNS, run_folder.mntk_columns


def _cell(value) -> str:
    """Exact, locale-free text: repr for floats (round-trips bitwise), '' for missing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


class CsvLog:
    """An append-only CSV file with a fixed header, flushed after every row."""

    def __init__(self, path: str | Path, columns: Sequence[str], keep_rows: int | None = None):
        """Open `path` for appending. `keep_rows=None` starts a new file; an int keeps that many data
        rows of an existing file (resume) and drops the rest."""
        self.path = Path(path)
        self.columns = tuple(columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if keep_rows is None or not self.path.exists():
            if keep_rows:
                raise FileNotFoundError(f"{self.path}: cannot resume, the file the checkpoint counts {keep_rows} rows of is missing")
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self.columns)
            self.rows = 0
        else:
            self.rows = self._truncate(keep_rows)
        self._fh = open(self.path, "a", newline="")
        self._writer = csv.writer(self._fh)

    def _truncate(self, keep_rows: int) -> int:
        with open(self.path, newline="") as fh:
            lines = fh.read().splitlines(keepends=True)
        header = next(csv.reader(lines[:1]), None)
        if tuple(header or ()) != self.columns:
            raise ValueError(f"{self.path}: header {header} does not match the expected columns {list(self.columns)}")
        if len(lines) - 1 < keep_rows:
            raise ValueError(f"{self.path}: has {len(lines) - 1} rows, fewer than the {keep_rows} the checkpoint recorded")
        write_atomic(self.path, "".join(lines[: keep_rows + 1]))
        return keep_rows

    def write(self, row: Mapping[str, object]) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"{self.path.name}: unknown columns {sorted(unknown)}; expected {list(self.columns)}")
        self._writer.writerow([_cell(row.get(c)) for c in self.columns])
        self._fh.flush()
        self.rows += 1

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> "CsvLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
