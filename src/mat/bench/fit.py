"""The straight line the memory benchmarks extrapolate with, from a few measured S to the paper's."""

from __future__ import annotations


def line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) through the points; through the origin for one point."""
    if len(xs) == 1:
        return 0.0, ys[0] / xs[0]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope
