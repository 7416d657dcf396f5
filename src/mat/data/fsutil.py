"""Writing files so that nothing half-written is ever mistaken for data.

All bytes this package writes go through `write_chunk`, so one place turns a failing disk
(`OSError`, e.g. ENOSPC) into a `DataError` naming the file -- and tests can make the disk fail by
replacing that one function. Whole files are written to a temporary sibling and renamed into place
(`mat.atomic`, the project's one atomic writer).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from mat.atomic import write_atomic

from .errors import DataError

CHUNK = 1 << 20


def write_chunk(fh: BinaryIO, data: bytes) -> None:
    """Write one chunk; the single choke point for every byte this package puts on disk."""
    fh.write(data)


def write_failed(path: Path, exc: OSError) -> DataError:
    """The user-facing error for a failed write (disk full, read-only folder, ...)."""
    reason = exc.strerror or str(exc)
    return DataError(f"could not write {path}: {reason}")


def copy_stream(
    read: Callable[[int], bytes],
    dst: Path,
    *,
    on_chunk: Callable[[int], None] | None = None,
    append: bool = False,
) -> tuple[int, str]:
    """Copy from a `read(n)` callable into `dst`, returning (bytes written, sha256 of `dst`).

    Read errors and write errors are told apart: a read error (damaged archive, dropped
    connection) is re-raised as is for the caller to interpret; a write error becomes a
    `DataError` naming `dst`. With `append`, the hash covers the bytes already in `dst` too.
    """
    digest = hashlib.sha256()
    total = 0
    if append and dst.exists():
        with open(dst, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                digest.update(block)
                total += len(block)
    try:
        fh = open(dst, "ab" if append else "wb")
    except OSError as exc:
        raise write_failed(dst, exc) from None
    with fh:
        while True:
            block = read(CHUNK)  # errors here belong to the source: the caller decides
            if not block:
                break
            try:
                write_chunk(fh, block)
            except OSError as exc:
                raise write_failed(dst, exc) from None
            digest.update(block)
            total += len(block)
            if on_chunk is not None:
                on_chunk(len(block))
        try:
            fh.flush()
            os.fsync(fh.fileno())
        except OSError as exc:
            raise write_failed(dst, exc) from None
    return total, digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_temp_dir(parent: Path, prefix: str, suffix: str) -> Path:
    """A fresh folder in `parent`, with the permissions a plain mkdir would give it
    (mkdtemp's private 0700 would carry over to the published dataset)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(path, 0o777 & ~_umask())
    return path


def write_bytes_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to `path` atomically (`mat.atomic`, the project's one writer): all or
    nothing. Every byte goes through `write_chunk`; a failing disk becomes a `DataError`."""
    path = Path(path)
    try:
        write_atomic(path, chunks, write=lambda fh, block: write_chunk(fh, block), parents=False)
    except OSError as exc:
        raise write_failed(path, exc) from None


def remove_tree(path: Path) -> None:
    """Remove a file or folder if it exists; used on every failure path."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
