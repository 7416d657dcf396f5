"""Mean ± std curves over seeds when seeds are logged at different compute points.

Each seed's (compute, value) points are linearly interpolated onto one grid of compute values, and
the mean and sample std (ddof=1) are taken across seeds at each grid point. The grid spans only the
compute range every seed covers (from the latest first point to the earliest last point), so no
curve is extrapolated; a run that ended early (MAT, Algorithm 1 line 2) shortens the band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GRID_POINTS = 200


def _clean(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by compute; where compute repeats, the last logged value is kept."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    keep = np.append(x[1:] != x[:-1], True)
    return x[keep], y[keep]


def seed_band(series: list[tuple[np.ndarray, np.ndarray]], points: int = GRID_POINTS) -> pd.DataFrame:
    """Columns x, mean, std, n_seeds on a common grid of `series` = [(x, y) per seed]."""
    if not series:
        raise ValueError("seed_band: no series given")
    cleaned = [_clean(np.asarray(x, float), np.asarray(y, float)) for x, y in series]
    if any(x.size == 0 for x, _ in cleaned):
        raise ValueError("seed_band: a seed has no points")
    lo = max(x[0] for x, _ in cleaned)
    hi = min(x[-1] for x, _ in cleaned)
    if lo > hi:
        raise ValueError(f"seed_band: the seeds' compute ranges do not overlap (latest start {lo:g} > earliest end {hi:g})")
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
    ys = np.stack([np.interp(grid, x, y) for x, y in cleaned])
    std = ys.std(axis=0, ddof=1) if len(cleaned) > 1 else np.full(grid.shape, np.nan)
    return pd.DataFrame({"x": grid, "mean": ys.mean(axis=0), "std": std, "n_seeds": len(cleaned)})
