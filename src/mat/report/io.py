"""Atomic file output: a reader (or Snakemake) never sees a half-written table or figure.

Every report file is written to a hidden temporary file in its destination folder and then renamed
over the destination (`os.replace`, atomic on one file system). A group of files (a table's CSV and
Markdown, a figure's PNG, PDF and CSV) is first rendered in memory, so an error leaves none of them.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_csv_atomic(path: str | Path, rows: Iterable[Mapping], fields: Sequence[str]) -> None:
    """Write dict rows as a CSV with header `fields`, atomically (rendered in memory first)."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(fields))
    w.writeheader()
    w.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def write_all_atomic(files: Mapping[str | Path, bytes | str]) -> None:
    """Write several already-rendered files, each atomically (a file is either old or new, never torn)."""
    for path, data in files.items():
        write_bytes_atomic(path, data.encode("utf-8") if isinstance(data, str) else data)
