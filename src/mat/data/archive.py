"""Pull the files a dataset needs out of a zip or tar archive.

Members are found by their base name wherever they sit in the archive (`wikitext-2/wiki.train.tokens`,
`cifar-10-batches-py/data_batch_1`), so a mirror that repacks the same files under another top
folder still works. Nothing is ever written to a path taken from the archive: each member is
copied to the output path the caller names, which rules out path-traversal tricks.
"""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

from . import fsutil
from .errors import DataError

# Errors that mean "these bytes are not a complete, valid archive".
_DAMAGED = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, ValueError)


def _kind(path: Path) -> str:
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except _DAMAGED:
        pass
    raise DataError(f"{path.name}: not a zip or tar archive (damaged or truncated?)")


def extract(archive: Path, wanted: dict[str, str], dest: Path) -> dict[str, tuple[int, str]]:
    """Copy each member whose base name is a key of `wanted` to `dest / wanted[key]`.

    Returns {relative output path: (bytes, sha256)}. Raises `DataError` if the archive is damaged,
    a wanted member is missing, or a base name matches more than one member.
    """
    archive = Path(archive)
    kind = _kind(archive)
    label = archive.name
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                members = {i.filename: i for i in zf.infolist() if not i.is_dir()}
                chosen = _choose(label, list(members), wanted)
                return {rel: _copy(label, name, lambda n=name: zf.open(members[n]), dest / rel)
                        for name, rel in chosen.items()}
        with tarfile.open(archive, "r:*") as tf:
            members = {m.name: m for m in tf.getmembers() if m.isfile()}
            chosen = _choose(label, list(members), wanted)
            return {rel: _copy(label, name, lambda n=name: tf.extractfile(members[n]), dest / rel)
                    for name, rel in chosen.items()}
    except DataError:
        raise
    except _DAMAGED as exc:
        raise DataError(f"{label}: archive is damaged or truncated ({type(exc).__name__}: {exc})") from None


def _choose(label: str, names: list[str], wanted: dict[str, str]) -> dict[str, str]:
    by_base: dict[str, list[str]] = {}
    for name in names:
        parts = PurePosixPath(name).parts
        if "__MACOSX" in parts:  # resource forks that macOS zips carry along
            continue
        by_base.setdefault(parts[-1], []).append(name)
    chosen, missing = {}, []
    for base, rel in wanted.items():
        hits = by_base.get(base, [])
        if not hits:
            missing.append(base)
        elif len(hits) > 1:
            raise DataError(f"{label}: {base} appears {len(hits)} times ({', '.join(sorted(hits))}); cannot choose")
        else:
            chosen[hits[0]] = rel
    if missing:
        shown = ", ".join(sorted(names)[:12]) + (" ..." if len(names) > 12 else "")
        raise DataError(f"{label}: missing {', '.join(missing)} (the archive holds: {shown or 'nothing'})")
    return chosen


def _copy(label: str, member: str, open_member: Callable, out: Path) -> tuple[int, str]:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fsutil.write_failed(out.parent, exc) from None
    with open_member() as src:
        return fsutil.copy_stream(src.read, out)
