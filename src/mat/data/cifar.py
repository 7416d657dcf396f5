"""CIFAR-10's python batch format: reading it safely, and writing it for generated data.

Each batch is a pickled dict with b'data' (uint8, N x 3072: 1024 red, then 1024 green, then 1024
blue values, each a 32x32 image row by row) and b'labels' (N ints in 0..9); `batches.meta` holds
b'label_names'. Pickles can run code when loaded, so they are read with an unpickler that admits
only the numpy functions an array needs and nothing else.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from . import fsutil
from .errors import DataError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
PIXELS = 3 * 32 * 32
NUM_CLASSES = 10

# numpy >= 2 pickles arrays via numpy._core; the original CIFAR files (and numpy 1.x) name numpy.core.
_ALLOWED = {
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            obj = _SafeUnpickler(fh, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as exc:
        raise DataError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8 [N, 3072], labels int64 [N]) of one batch file, checked."""
    obj = _unpickle(path)
    for key in (b"data", b"labels"):
        if key not in obj:
            raise DataError(f"{path}: no {key!r} entry (keys: {sorted(obj)})")
    data, labels = obj[b"data"], np.asarray(obj[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: b'data' must be uint8 of shape (N, {PIXELS}), got {got}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: b'labels' must be {data.shape[0]} integers, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{path}: labels must lie in 0..{NUM_CLASSES - 1}, got {labels.min()}..{labels.max()}")
    return data, labels.astype(np.int64)


def read_meta(path: Path) -> list[str]:
    obj = _unpickle(path)
    names = obj.get(b"label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise DataError(f"{path}: b'label_names' must list {NUM_CLASSES} names")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def read_folder(folder: Path) -> dict:
    """All of a `cifar-10-batches-py` folder: train/test arrays [N,3,32,32] and class names."""
    folder = Path(folder)
    train = [read_batch(folder / n) for n in TRAIN_BATCHES]
    test_x, test_y = read_batch(folder / TEST_BATCH)
    classes = read_meta(folder / META)
    train_x = np.concatenate([d for d, _ in train]).reshape(-1, 3, 32, 32)
    train_y = np.concatenate([lab for _, lab in train])
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x.reshape(-1, 3, 32, 32),
            "test_y": test_y, "classes": classes}


def write_batch(path: Path, images: np.ndarray, labels: np.ndarray, batch_label: str, first_index: int) -> None:
    """Write one batch in the original format (images uint8 [N,3,32,32]); atomic."""
    record = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": np.ascontiguousarray(images.reshape(len(images), PIXELS), dtype=np.uint8),
        b"filenames": [f"image_{first_index + i:06d}.png".encode() for i in range(len(images))],
    }
    _write_pickle(path, record)


def write_meta(path: Path, label_names: list[str], per_batch: int) -> None:
    _write_pickle(path, {b"num_cases_per_batch": per_batch,
                         b"label_names": [n.encode() for n in label_names], b"num_vis": PIXELS})


def _write_pickle(path: Path, obj: dict) -> None:
    buf = io.BytesIO()
    pickle.dump(obj, buf, protocol=4)  # fixed protocol: same input, byte-identical file
    fsutil.write_bytes_atomic(path, [buf.getvalue()])
