"""The timing harness every speed benchmark uses.

A measurement is the wall-clock time of one call, CUDA synchronised before and after (so queued
kernels are counted where they run), with the process CPU time beside it: on a shared CPU the CPU
seconds are less disturbed by other processes than the wall seconds. Variants are timed
round-robin, one call each per round in a fresh random order, so load drift hits them alike;
warm-up rounds (allocator, kernels, compilation) are not kept; the median of the kept rounds is
what a CSV reports.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Hashable, Mapping

import torch


def sync(device: torch.device | None) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device | None = None) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call of `fn`, synchronised on CUDA."""
    sync(device)
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def round_robin(
    variants: Mapping[Hashable, Callable[[], object]],
    *,
    repeats: int,
    warmup: int,
    seed: int,
    device: torch.device | None = None,
    before: Callable[[Hashable], None] | None = None,
    label: str = "",
    shuffle: bool = True,
) -> tuple[dict[Hashable, list[float]], dict[Hashable, list[float]]]:
    """Time every variant once per round for `warmup + repeats` rounds; returns the kept rounds'
    (wall seconds, CPU seconds) per variant. `before(key)` runs untimed before each call (e.g.
    setting the frozen set). `shuffle`: a fresh random order every round (from `seed`); else the
    given order every round."""
    keys = list(variants)
    wall: dict[Hashable, list[float]] = {k: [] for k in keys}
    cpu: dict[Hashable, list[float]] = {k: [] for k in keys}
    rng = torch.Generator().manual_seed(seed)
    for r in range(warmup + repeats):
        order = torch.randperm(len(keys), generator=rng).tolist() if shuffle else range(len(keys))
        for i in order:
            key = keys[i]
            if before is not None:
                before(key)
            t, c = timed(variants[key], device)
            if r >= warmup:
                wall[key].append(t)
                cpu[key].append(c)
        if label is not None:
            print(f"{label}round {r + 1}/{warmup + repeats}" + (" (warm-up)" if r < warmup else ""), flush=True)
    return wall, cpu


def load_avg() -> float | None:
    """The machine's 1-minute load average (other processes' share of a shared CPU); None where
    the platform has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None
