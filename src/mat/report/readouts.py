"""Reading a curve at a point between its logged points: linear interpolation, never extrapolation.

A run logs its evaluations (and its per-epoch training accuracy) at discrete cumulative compute
values. A budget (Tables 1-2: "validation loss @ 10 PFLOPs") or a target (Table 3: "computation
until train accuracy = 95%") falls between two of them. Reading the last point before it would be
early by up to one logging interval, and by a different amount per method; so the value is read
on the straight line between the two points around it. Outside the logged range there is nothing
to read: before the first point `BEFORE_FIRST`, after the last one `AFTER_LAST` (the run ended).

`READOUTS` names the two readings a profile may choose (`report.budget_readout`):
  interpolate    (default) the value on the line between the points around the budget
  last_before    the last point at or below the budget (the earlier reading, kept as an option)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

READOUTS = ("interpolate", "last_before")
INSIDE, BEFORE_FIRST, AFTER_LAST = "inside", "before_first", "after_last"


@dataclass(frozen=True)
class Reading:
    value: float  # NaN unless `where` is INSIDE
    where: str  # INSIDE | BEFORE_FIRST | AFTER_LAST


def value_at(x, y, at: float, readout: str = "interpolate") -> Reading:
    """y at x = `at` on the curve (x increasing): interpolated (or the last point at or below it)."""
    if readout not in READOUTS:
        raise ValueError(f"readout {readout!r}; expected one of {READOUTS}")
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size == 0 or at < x[0]:
        return Reading(float("nan"), BEFORE_FIRST)
    if at > x[-1]:
        return Reading(float("nan"), AFTER_LAST)
    i = int(np.searchsorted(x, at, side="right")) - 1  # last point at or below `at`
    if readout == "last_before" or x[i] == at or i + 1 >= x.size:
        return Reading(float(y[i]), INSIDE)
    t = (at - x[i]) / (x[i + 1] - x[i])
    return Reading(float(y[i] + t * (y[i + 1] - y[i])), INSIDE)


def first_crossing(x, y, target: float, readout: str = "interpolate") -> float | None:
    """x where y first reaches `target` (y rising): on the line between the last point below it and
    the first point at or above it; the first point's x when the curve starts at or above it (no
    earlier point to read from); None if it never does. `last_before` gives the first point's x."""
    if readout not in READOUTS:
        raise ValueError(f"readout {readout!r}; expected one of {READOUTS}")
    x, y = np.asarray(x, float), np.asarray(y, float)
    hit = np.flatnonzero(y >= target)
    if hit.size == 0:
        return None
    j = int(hit[0])
    if j == 0 or readout == "last_before":
        return float(x[j])
    t = (target - y[j - 1]) / (y[j] - y[j - 1])
    return float(x[j - 1] + t * (x[j] - x[j - 1]))
