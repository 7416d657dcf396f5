"""`mat-data.json`: what a dataset folder holds, where it came from, and the hash of every file.

The manifest doubles as the lock file. Where no checksum is pinned in code (WikiText-103, the
CIFAR-10 batch files, generated data), the hashes recorded at first fetch are what every later
check compares against: re-verifying a folder, or fetching again with `--lock OLD/mat-data.json`,
reports a changed upstream instead of silently training on different data.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

from . import cifar, fsutil
from .errors import DataError
from .hashing import check_digest, sha256_file
from .sources import CIFAR10_COUNTS, Spec, spec

MANIFEST = "mat-data.json"
FORMAT = 1


def write(folder: Path, sp: Spec, source: str, files: dict[str, tuple[int, str]],
          options: dict, archive: dict | None = None) -> dict:
    """Write `folder/mat-data.json` atomically; `files` maps relative path -> (bytes, sha256)."""
    record = {
        "format": FORMAT,
        "name": sp.name,
        "variant": sp.variant,
        "source": source,
        "options": options,
        "files": {rel: {"bytes": n, "sha256": h} for rel, (n, h) in sorted(files.items())},
    }
    if archive:
        record["archive"] = archive
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    fsutil.write_bytes_atomic(Path(folder) / MANIFEST, [text.encode()])
    return record


def read(path: Path) -> dict:
    """A manifest (or lock) file, checked for the keys the rest of this package relies on."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}: expected a JSON object")
    for key in ("name", "variant", "files"):
        if key not in record:
            raise DataError(f"{path}: no {key!r} entry")
    files = record["files"]
    if not isinstance(files, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("bytes"), int)
            for v in files.values()):
        raise DataError(f"{path}: 'files' must map each path to {{'bytes': int, 'sha256': str}}")
    return record


def expected_hashes(sp: Spec, lock: dict | None, lock_label: str = "") -> dict[str, list[tuple[str, str]]]:
    """{relative path: [(sha256, why)]}: pinned in code, and recorded in a lock file if given."""
    expected: dict[str, list[tuple[str, str]]] = {}
    for rel, digest in sp.pinned.items():
        expected.setdefault(rel, []).append((digest, "pinned in mat.data.sources"))
    if lock is not None:
        if lock["name"] != sp.name or lock["variant"] != sp.variant:
            raise DataError(f"{lock_label}: lock is for {lock['variant']}, not {sp.variant}")
        for rel, entry in lock["files"].items():
            expected.setdefault(rel, []).append((entry["sha256"], f"recorded in {lock_label}; upstream changed?"))
    return expected


def check_content(folder: Path, sp: Spec, files: dict[str, tuple[int, str]],
                  expected: dict[str, list[tuple[str, str]]], options: dict) -> None:
    """Everything a dataset folder must satisfy, given the measured (bytes, sha256) of its files."""
    folder = Path(folder)
    missing = [rel for rel in sp.files if rel not in files]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}")
    for rel, (_, got) in files.items():
        for digest, why in expected.get(rel, []):
            check_digest(str(folder / rel), got, digest, why=why)
    for rel, least in sp.min_bytes.items():
        if files[rel][0] < least:
            raise DataError(f"{folder / rel}: {files[rel][0]} bytes, expected at least {least} "
                            f"for {sp.name} (is this the right dataset?)")
    if sp.kind == "text":
        for rel in sp.files:
            _check_utf8(folder / rel)
    else:
        _check_images(folder, sp, options)


def _check_utf8(path: Path, probe: int = 1 << 20) -> None:
    """Text splits must be UTF-8 text; a probe of the first megabyte catches binary impostors."""
    with open(path, "rb") as fh:
        head = fh.read(probe)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if not head.strip():
        raise DataError(f"{path}: empty")


def _check_images(folder: Path, sp: Spec, options: dict) -> None:
    arrays = cifar.read_folder(folder / "cifar-10-batches-py")
    if sp.name == "cifar10":
        want = CIFAR10_COUNTS
    else:
        want = {"train": options.get("train_size"), "test": options.get("test_size")}
    for split in ("train", "test"):
        n = len(arrays[f"{split}_y"])
        if want[split] is not None and n != want[split]:
            raise DataError(f"{folder}: {n} {split} images, expected {want[split]}")


def verify(name: str, folder: Path, lock: Path | None = None) -> dict:
    """Re-check a finished dataset folder against its manifest, pinned hashes and `lock`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    record = read(folder)
    if record["name"] != name:
        raise DataError(f"{folder / MANIFEST}: holds {record['name']}, not {name}")
    sp = spec(name, raw=record["variant"].endswith("-raw"))
    if record["variant"] != sp.variant:
        raise DataError(f"{folder / MANIFEST}: unknown variant {record['variant']!r}")
    measured: dict[str, tuple[int, str]] = {}
    for rel, entry in record["files"].items():
        path = folder / rel
        if not path.is_file():
            raise DataError(f"{path}: missing (listed in {MANIFEST})")
        got = sha256_file(path)
        check_digest(str(path), got, entry["sha256"], why=f"recorded in {MANIFEST}")
        measured[rel] = (path.stat().st_size, got)
    lock_record = read(lock) if lock is not None else None
    expected = expected_hashes(sp, lock_record, str(lock))
    check_content(folder, sp, measured, expected, record.get("options", {}))
    return record
