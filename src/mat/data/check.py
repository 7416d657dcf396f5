"""Before training: is this dataset folder exactly what its `mat-data.json` says it is?

Every run calls `check_for_training` before its first step. File sizes are compared every time
(a stat per file); the sha256 of every file is compared once per dataset version and the verdict
remembered in a stamp (`.mat-verified.json`, beside the manifest) keyed by the manifest's own hash
and each file's (size, mtime) -- so a 500 MB corpus is hashed once, and a file rewritten since
(a flipped byte changes its mtime) is hashed again. A folder that cannot hold the stamp (read-only)
is simply hashed every time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import fsutil
from .errors import DataError
from .hashing import check_digest, sha256_file
from .manifest import MANIFEST, read

STAMP = ".mat-verified.json"


def _stat_key(folder: Path, files: dict) -> dict[str, list[int]]:
    key = {}
    for rel in sorted(files):
        st = (folder / rel).stat()
        key[rel] = [st.st_size, st.st_mtime_ns]
    return key


def _read_stamp(path: Path) -> dict | None:
    try:
        stamp = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def check_for_training(folder: Path, name: str, options: dict | None = None) -> dict:
    """Refuse (DataError: the file, expected and actual) a folder that is not the dataset its
    manifest records: missing manifest, another dataset, other generator options, a missing file,
    a wrong size or a wrong sha256. Returns the manifest."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise DataError(f"{manifest_path}: missing, so the folder's files cannot be verified")
    record = read(manifest_path)
    if record["name"] != name:
        raise DataError(f"{manifest_path}: holds dataset {record['name']!r}, expected {name!r} (data.name)")
    if options is not None:
        recorded = record.get("options", {})
        for key, want in sorted(options.items()):
            if recorded.get(key) != want:
                raise DataError(f"{manifest_path}: made with {key}={recorded.get(key)!r}, expected {want!r}")
    files = record["files"]
    for rel, entry in sorted(files.items()):
        path = folder / rel
        if not path.is_file():
            raise DataError(f"{path}: missing (listed in {MANIFEST})")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise DataError(f"{path}: {size} bytes, expected {entry['bytes']} (recorded in {MANIFEST})")
    version = hashlib.sha256(manifest_path.read_bytes()).hexdigest()
    stamp_path = folder / STAMP
    key = {"manifest_sha256": version, "files": _stat_key(folder, files)}
    if _read_stamp(stamp_path) == key:
        return record
    for rel, entry in sorted(files.items()):
        path = folder / rel
        check_digest(str(path), sha256_file(path), entry["sha256"], why=f"recorded in {MANIFEST}")
    try:
        fsutil.write_bytes_atomic(stamp_path, [(json.dumps(key, sort_keys=True) + "\n").encode()])
    except (DataError, OSError):
        pass  # a read-only folder: hash again next time
    return record

