"""Where the files of each dataset sit inside a folder.

One reader serves downloads, local copies and generated data alike, because all of them share
the original layouts: WikiText's `wiki.{train,valid,test}.tokens` (or `.raw`) and CIFAR-10's
`cifar-10-batches-py/` python batches.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DataError
from .sources import CIFAR_DIR, SPLITS, text_files


def _listing(folder: Path) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    except OSError:
        return "unreadable"
    if not names:
        return "nothing"
    return ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")


def find_text_split_dir(folder: Path, raw: bool | None) -> tuple[Path, bool]:
    """The folder holding WikiText's split files: `folder` itself or one subfolder of it.

    `raw=None` accepts either variant, preferring `.tokens`. Returns (folder, raw). A folder with
    some split files but not all is reported as missing those, never silently skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
    variants = [False, True] if raw is None else [raw]
    partial: list[str] = []
    for cand in candidates:
        for r in variants:
            names = text_files(r)
            present = [n for n in names if (cand / n).is_file()]
            if len(present) == len(names):
                return cand, r
            if present:
                missing = [n for n in names if n not in present]
                partial.append(f"{cand} has {', '.join(present)} but no {', '.join(missing)}")
    if partial:
        raise DataError("incomplete WikiText folder: " + "; ".join(partial))
    other = [] if raw is None else [cand for cand in candidates
                                    if all((cand / n).is_file() for n in text_files(not raw))]
    if other:
        flag = "without --raw" if raw else "with --raw"
        raise DataError(f"{other[0]} holds the {'tokenized' if raw else 'raw'} WikiText variant; run {flag}")
    want = " or ".join("{" + ",".join(text_files(r)) + "}" for r in variants)
    raise DataError(f"{folder} is not in WikiText layout: expected {want}, found {_listing(folder)}")


def find_text_splits(folder: Path, raw: bool | None = None) -> dict[str, Path]:
    """{split: path} for train, valid and test."""
    where, r = find_text_split_dir(folder, raw)
    return {s: where / n for s, n in zip(SPLITS, text_files(r))}


def find_cifar_dir(folder: Path) -> Path:
    """The `cifar-10-batches-py` folder: `folder/cifar-10-batches-py`, or `folder` itself."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    for cand in (folder / CIFAR_DIR, folder):
        if (cand / "data_batch_1").is_file() or (cand / "test_batch").is_file():
            return cand
    raise DataError(f"{folder} is not in CIFAR-10 layout: expected {CIFAR_DIR}/data_batch_1..5, "
                    f"test_batch, batches.meta; found {_listing(folder)}")
