"""A generated 10-class image set in CIFAR-10's python batch format (the `tiny` profile).

Each class is a shape or a texture (disc, square, ring, cross, triangle, horizontal / vertical /
diagonal stripes, checkerboard, dot grid) drawn at a random position, size, period and phase, in
random foreground and background colours, plus per-pixel noise. So the class is carried by spatial
structure -- no single pixel or colour gives it away -- and a small CNN learns it in seconds, while
a linear model on raw pixels does much worse. A weak class-dependent tint (a few grey levels) adds
the "colour pattern" cue that real photos have.

Everything is integer arithmetic on numpy's PCG64 stream, so the same seed writes byte-identical
files on any machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import cifar
from .sources import CIFAR_DIR

CLASSES = ["disc", "square", "ring", "cross", "triangle",
           "hstripes", "vstripes", "diagonal", "checker", "dots"]
DEFAULT_TRAIN = 5000
DEFAULT_TEST = 1000
_SIZE = 32
_NOISE = 28  # per-pixel noise amplitude, in grey levels
_TINT = 12  # class-dependent colour shift, in grey levels


def _masks(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean foreground masks [N, 32, 32]; one vectorised formula per class."""
    n = len(labels)
    yy = np.arange(_SIZE, dtype=np.int64)[None, :, None]
    xx = np.arange(_SIZE, dtype=np.int64)[None, None, :]
    cx = rng.integers(10, 22, n)[:, None, None]
    cy = rng.integers(10, 22, n)[:, None, None]
    r = rng.integers(6, 11, n)[:, None, None]
    width = rng.integers(2, 5, n)[:, None, None]  # stripe half-period, bar half-width
    px = rng.integers(0, 16, n)[:, None, None]
    py = rng.integers(0, 16, n)[:, None, None]
    dx, dy = xx - cx, yy - cy
    d2 = dx * dx + dy * dy
    shapes = [
        d2 <= r * r,                                                     # disc
        (np.abs(dx) <= r - 1) & (np.abs(dy) <= r - 1),                   # square
        (d2 <= r * r) & (d2 >= (r - 3) * (r - 3)),                       # ring
        ((np.abs(dx) <= 1) & (np.abs(dy) <= r)) | ((np.abs(dy) <= 1) & (np.abs(dx) <= r)),  # cross
        (dy >= -r) & (dy <= r) & (2 * np.abs(dx) <= dy + r),             # triangle, apex up
        ((yy + py) // width) % 2 == 0,                                   # horizontal stripes
        ((xx + px) // width) % 2 == 0,                                   # vertical stripes
        ((xx + yy + px) // (width + 1)) % 2 == 0,                        # diagonal stripes
        (((xx + px) // (width + 1)) + ((yy + py) // (width + 1))) % 2 == 0,  # checkerboard
        ((xx + px) % (2 * width + 3) < 2) & ((yy + py) % (2 * width + 3) < 2),  # dot grid
    ]
    masks = np.zeros((n, _SIZE, _SIZE), dtype=bool)
    for k, shape in enumerate(shapes):
        rows = labels == k
        masks[rows] = np.broadcast_to(shape, (n, _SIZE, _SIZE))[rows]
    return masks


def _colours(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background RGB [N, 3] that differ by at least 90 grey levels in some channel."""
    fg = rng.integers(0, 256, (n, 3))
    bg = rng.integers(0, 256, (n, 3))
    weak = np.abs(fg - bg).max(axis=1) < 90
    fg[weak] = 255 - bg[weak]  # the complement is at least 128 away in some channel
    return fg, bg


def images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [n, 3, 32, 32], int64 labels [n]) with balanced classes in shuffled order."""
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    masks = _masks(labels, rng)
    fg, bg = _colours(n, rng)
    tint = np.random.Generator(np.random.PCG64(12345)).integers(-_TINT, _TINT + 1, (len(CLASSES), 3))
    pixels = np.where(masks[:, None], fg[:, :, None, None], bg[:, :, None, None])
    pixels = pixels + tint[labels][:, :, None, None]
    pixels = pixels + rng.integers(-_NOISE, _NOISE + 1, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8), labels


def generate(folder: Path, seed: int = 0, train_size: int = DEFAULT_TRAIN,
             test_size: int = DEFAULT_TEST) -> list[Path]:
    """Write `folder/cifar-10-batches-py/` (5 training batches, a test batch, batches.meta)."""
    if train_size < 5 or test_size < 1:
        raise ValueError(f"need at least 5 training and 1 test image, got {train_size} and {test_size}")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0x4D4154])))
    train_x, train_y = images(train_size, rng)
    test_x, test_y = images(test_size, rng)
    out = Path(folder) / CIFAR_DIR
    out.mkdir(parents=True, exist_ok=True)
    written = []
    start = 0
    for i, (xs, ys) in enumerate(zip(np.array_split(train_x, 5), np.array_split(train_y, 5)), 1):
        path = out / f"data_batch_{i}"
        cifar.write_batch(path, xs, ys, f"training batch {i} of 5", start)
        start += len(ys)
        written.append(path)
    cifar.write_batch(out / cifar.TEST_BATCH, test_x, test_y, "testing batch 1 of 1", start)
    cifar.write_meta(out / cifar.META, CLASSES, int(np.ceil(train_size / 5)))
    return written + [out / cifar.TEST_BATCH, out / cifar.META]
