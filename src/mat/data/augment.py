"""Standard CIFAR augmentation and normalisation, on whole batches, on the batch's device.

Training mode: pad each image with 4 zero pixels on every side, take a random 32x32 crop, and flip
it horizontally with probability 1/2 (the usual `RandomCrop(32, padding=4)` +
`RandomHorizontalFlip()`), then normalise. Crop and flip are one gather with per-image row and
column indices, so there is no per-image Python loop. Evaluation mode only normalises.

Random draws come from the `generator` passed in, on its device, in the order: row offsets, column
offsets, flips (each of batch length); they are then moved to the batch's device, so a CPU
generator gives the same augmentation for a batch on any device.
"""

from __future__ import annotations

from typing import Sequence

import torch

PAD = 4


def augment(x: torch.Tensor, generator: torch.Generator | None, mean: torch.Tensor | Sequence[float],
            std: torch.Tensor | Sequence[float], train: bool) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float32 [B, C, H, W], normalised with per-channel `mean` / `std`."""
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise ValueError(f"expected uint8 images [B, C, H, W], got {x.dtype} {tuple(x.shape)}")
    if train:
        if generator is None:
            raise ValueError("training-mode augmentation needs a generator")
        x = _crop_flip(x, generator)
    device = x.device
    mean = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return (x.to(torch.float32) / 255.0 - mean) / std


def _crop_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    b, c, h, w = x.shape
    device, gdev = x.device, generator.device
    dy = torch.randint(0, 2 * PAD + 1, (b,), generator=generator, device=gdev).to(device)
    dx = torch.randint(0, 2 * PAD + 1, (b,), generator=generator, device=gdev).to(device)
    flip = torch.randint(0, 2, (b,), generator=generator, device=gdev).to(device).bool()
    padded = torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD))  # zeros, like RandomCrop(padding=4)
    rows = dy[:, None] + torch.arange(h, device=device)  # [B, H], in padded coordinates
    cols = torch.arange(w, device=device).expand(b, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + dx[:, None]  # flip = read columns backwards
    batch = torch.arange(b, device=device)[:, None, None, None]
    chan = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
