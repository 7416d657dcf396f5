"""Content hashes: sha256 identifies every file this package hands to a trainer."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import DataError
from .fsutil import CHUNK


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks so large corpora do not need to fit in memory."""
    digest = hashlib.new(algorithm)
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"could not read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    return file_digest(path, "sha256")


def check_digest(label: str, got: str, expected: str, algorithm: str = "sha256", why: str = "") -> None:
    """Raise a `DataError` naming the file and both hashes when they differ."""
    if got != expected:
        suffix = f" ({why})" if why else ""
        raise DataError(f"{label}: {algorithm} mismatch: got {got}, expected {expected}{suffix}")
