"""Mean and spread over seeds, and how a cell shows them.

Spread is the sample standard deviation (ddof=1), as the paper's "mean +- std" over runs; with one
seed there is no spread and the std is NaN (shown as "n/a"), never a made-up 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float  # sample std (ddof=1); NaN with fewer than 2 values
    n: int  # values that went into the mean (seeds with a value)

    @property
    def present(self) -> bool:
        return self.n > 0


def summarize(values: Iterable[float | None]) -> Summary:
    """Mean and sample std of the values that are present (None/NaN values are left out)."""
    xs = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if xs.size == 0:
        return Summary(math.nan, math.nan, 0)
    std = float(np.std(xs, ddof=1)) if xs.size > 1 else math.nan
    return Summary(float(np.mean(xs)), std, int(xs.size))


def combined_std(a: float, b: float) -> float:
    """Std of the difference of two independent draws: sqrt(a^2 + b^2)."""
    return math.sqrt(a * a + b * b)


def _exponent(x: float) -> int:
    return int(math.floor(math.log10(abs(x)))) if x != 0 and not math.isnan(x) else 0


def fmt_number(x: float, digits: int, style: str = "f") -> str:
    """`digits` decimals (style "f") or `digits` significant digits (style "g")."""
    if math.isnan(x):
        return "n/a"
    if style == "g":
        return f"{x:.{max(0, digits - 1 - _exponent(x))}f}" if -3 < _exponent(x) < 5 else f"{x:.{digits - 1}e}"
    return f"{x:.{digits}f}"


def fmt_pm(s: Summary, digits: int, style: str = "f") -> str:
    """'mean ± std' (or just 'mean' with one value, 'n/a' with none).

    With style "g" the std takes the mean's precision, and very small or large values share the
    mean's power of ten: (9.084 ± 0.730)e-04 reads better than 0.0009084 ± 7.297e-05.
    """
    if not s.present:
        return "n/a"
    if style == "g" and not -3 < _exponent(s.mean) < 5:
        e = _exponent(s.mean)
        scaled = Summary(s.mean / 10**e, s.std / 10**e, s.n)
        inner = fmt_pm(scaled, digits - 1, "f")
        return f"({inner})e{e:+03d}" if not math.isnan(s.std) else f"{inner}e{e:+03d}"
    if math.isnan(s.std):
        return fmt_number(s.mean, digits, style)
    if style == "g":
        decimals = max(0, digits - 1 - _exponent(s.mean))
        return f"{s.mean:.{decimals}f} ± {s.std:.{decimals}f}"
    return f"{fmt_number(s.mean, digits, style)} ± {fmt_number(s.std, digits, style)}"
