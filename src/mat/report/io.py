"""Atomic file output for the report: a reader (or Snakemake) never sees a half-written table or figure.

The writer is the project's one (`mat.atomic`): each file goes to a hidden temporary file in its
destination folder and is renamed over the destination. A group of files (a table's CSV and
Markdown, a figure's PNG, PDF and CSV) is first rendered in memory, so an error leaves none of them.
"""

from __future__ import annotations

from pathlib import Path

from mat.atomic import write_all_atomic, write_atomic, write_csv_atomic

__all__ = ["write_all_atomic", "write_bytes_atomic", "write_csv_atomic", "write_text_atomic"]


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then rename it."""
    write_atomic(path, data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, text)
