"""The frozen sets the speed benchmarks compare (a MAT step with some modules frozen)."""

from __future__ import annotations

import torch


def frozen_mask(partition, fraction: float, seed: int) -> torch.Tensor:
    """Active mask with round(fraction * n) modules of every layer frozen, chosen at random."""
    active = torch.ones(len(partition), dtype=torch.bool)
    g = torch.Generator().manual_seed(seed)
    for (_, _), idx in partition.groups().items():
        k = round(fraction * len(idx))
        pick = torch.randperm(len(idx), generator=g)[:k]
        active[torch.tensor(idx)[pick]] = False
    return active
