"""CIFAR-10-layout folders -> uint8 image tensors, with normalisation statistics.

`load_images(folder)` accepts a folder holding `cifar-10-batches-py/` (what `get` writes) or that
folder itself. The per-channel mean and std (pixel values scaled to [0, 1]) are computed from the
training images of whatever was loaded, in float64: on the real CIFAR-10 this gives the usual
constants (0.4914, 0.4822, 0.4465) / (0.2470, 0.2435, 0.2616), and on generated data its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import cifar, layout


@dataclass
class ImageData:
    train_x: torch.Tensor  # uint8 [N, 3, 32, 32]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor  # float32 [3], per channel, pixels in [0, 1]
    std: torch.Tensor
    classes: list[str]


def channel_stats(images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of uint8 [N, 3, H, W] images, in [0, 1] units."""
    n = images.shape[0] * images.shape[2] * images.shape[3]
    total = np.zeros(3, dtype=np.float64)
    squares = np.zeros(3, dtype=np.float64)
    for start in range(0, images.shape[0], 10_000):  # bounded memory on 50k images
        chunk = images[start:start + 10_000].astype(np.float64) / 255.0
        total += chunk.sum(axis=(0, 2, 3))
        squares += (chunk * chunk).sum(axis=(0, 2, 3))
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
    return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)


def load_images(data_dir: str | Path) -> ImageData:
    arrays = cifar.read_folder(layout.find_cifar_dir(Path(data_dir)))
    mean, std = channel_stats(arrays["train_x"])
    return ImageData(
        train_x=torch.from_numpy(np.ascontiguousarray(arrays["train_x"])),
        train_y=torch.from_numpy(arrays["train_y"]),
        test_x=torch.from_numpy(np.ascontiguousarray(arrays["test_x"])),
        test_y=torch.from_numpy(arrays["test_y"]),
        mean=mean, std=std, classes=arrays["classes"],
    )
