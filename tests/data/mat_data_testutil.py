"""Helpers shared by the datasets tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(files: dict[str, bytes], top: str = "wikitext-2") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/", "")
        for name, data in files.items():
            zf.writestr(f"{top}/{name}", data)
    return buf.getvalue()


def make_tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary or download folders a failed `get` must not leave behind."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))
