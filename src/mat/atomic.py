"""The project's one atomic writer: a file is either its old self or wholly new, never torn.

Every file is written to a hidden temporary sibling (`.NAME.XXXX.tmp`, in the destination folder so
the rename stays on one file system) and renamed over the destination with `os.replace`, atomic on
POSIX and Windows. On any error the temporary file is removed and the destination is untouched.

Everything that writes a finished file goes through `atomic_file`: the data layer
(`mat.data.fsutil`, which turns disk errors into `DataError`), the trainer's run folder
(`mat.run_folder`: logs, checkpoints, weights, `summary.json`), the report's tables and figures and
the benchmarks' CSVs. This module imports nothing from `mat`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Mapping, Sequence

TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_files(folder: str | Path) -> list[Path]:
    """Temporary files `atomic_file` leaves behind only when its process is killed mid-write."""
    return sorted(Path(folder).glob(f".*{TEMP_SUFFIX}"))


@contextlib.contextmanager
def atomic_path(
    path: str | Path, *, unique: bool = True, keep_previous: str | Path | None = None, parents: bool = True
) -> Iterator[Path]:
    """A temporary path to write; it replaces `path` when the block ends without an error.

    `unique`: a fresh `.NAME.XXXX.tmp` (two writers never share one); False: always `.NAME.tmp`,
    for writers that record the file name they were given (`torch.save` names its zip archive
    after it, so a random name would make identical weights differ). `keep_previous`: move the
    existing `path` there just before the rename (the last two versions are kept). `parents`:
    create the destination folder if needed."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    if unique:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 is for secrets, not results
    else:
        tmp = path.with_name(f".{path.name}{TEMP_SUFFIX}")
    try:
        yield tmp
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_file(
    path: str | Path, *, fsync: bool = False, keep_previous: str | Path | None = None, parents: bool = True
) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces `path` when the block ends without an error
    (`atomic_path`). `fsync`: force the bytes to disk before the rename (resume state that must
    survive a power cut)."""
    with atomic_path(path, keep_previous=keep_previous, parents=parents) as tmp:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())


def write_atomic(
    path: str | Path,
    data: bytes | str | Iterable[bytes],
    *,
    write: Callable[[BinaryIO, bytes], object] | None = None,
    fsync: bool = False,
    parents: bool = True,
) -> None:
    """Write `data` (bytes, UTF-8 text, or an iterable of byte chunks) to `path` atomically.
    `write(fh, chunk)` writes one chunk (default `fh.write`; the data layer passes its own)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    chunks = [data] if isinstance(data, (bytes, bytearray)) else data
    put = write or (lambda fh, chunk: fh.write(chunk))
    with atomic_file(path, fsync=fsync, parents=parents) as fh:
        for chunk in chunks:
            put(fh, chunk)


def copy_atomic(src: str | Path, dst: str | Path) -> None:
    """Copy `src` to `dst` atomically (publishing a finished file from a work folder)."""
    with open(src, "rb") as fin, atomic_file(dst) as fout:
        shutil.copyfileobj(fin, fout)


def csv_text(rows: Iterable[Mapping], fields: Sequence[str]) -> str:
    """Dict rows as CSV text with header `fields` (csv's default dialect, \\r\\n line ends)."""
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(fields))
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_csv_atomic(path: str | Path, rows: Iterable[Mapping], fields: Sequence[str]) -> None:
    """Write dict rows as a CSV with header `fields`, atomically (rendered in memory first)."""
    write_atomic(path, csv_text(rows, fields))


def write_all_atomic(files: Mapping[str | Path, bytes | str]) -> None:
    """Write several already-rendered files, each atomically (a file is either old or new, never torn)."""
    for path, data in files.items():
        write_atomic(path, data)
