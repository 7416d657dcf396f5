"""How a claim of the paper is judged against a profile's mean ± std over seeds.

Three kinds of claim appear in Section 5.1, each with one rule (the rule text is written into
claims.md beside the verdicts):
- ordering ("MAT has the best test loss"): `better`
- reaching ("MAT reaches with 10 PFLOPs what vanilla reaches with 20", "accuracy >= vanilla's"):
  `not_worse`
- size ("about 15% lower test perplexity", "saves 41% computation"): `about`
- reaching a target first ("reaches 99% train accuracy with less computation"): `sooner`
A difference smaller than the combined std sqrt(s_a^2 + s_b^2) of the two seed spreads is not
taken as evidence either way. With a value missing or a single seed (no spread) nothing is decided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mat.report.stats import combined_std

HOLDS, FAILS, UNSURE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
ABOUT_TOLERANCE = 0.25  # "about P%" accepts P ± 25% of P (15% -> 11.25% to 18.75%)

RULES = {
    "better": (
        "holds if MAT's mean is better than each compared method's by more than their combined std "
        "sqrt(s_MAT^2 + s_other^2); does not hold if a compared method is better than MAT by more than "
        "the combined std; inconclusive otherwise (differences within the seeds' spread)."
    ),
    "not_worse": (
        "holds if MAT's mean is at least as good as the reference's; does not hold if it is worse by "
        "more than the combined std; inconclusive if it is worse by less than that."
    ),
    "about": (
        "our reduction r is computed from the means, and its range from the difference ± the combined "
        "std (perplexity: r = 1 - exp(loss_MAT - loss_vanilla); ratios (computation, log perplexity): "
        "r = 1 - m_MAT/m_vanilla with relative std sqrt((s_MAT/m_MAT)^2 + (s_van/m_van)^2)). "
        f"Holds if the range lies above 0 and overlaps the paper's figure ± {ABOUT_TOLERANCE:.0%} of it; "
        "inconclusive if the range contains 0; does not hold if the range lies at or below 0 (no "
        "reduction), or above 0 but outside that band (the direction holds, the size does not)."
    ),
    "sooner": (
        "as `better` when both methods reach the target in every seed; when one never reaches it, "
        "the other is sooner if its computation to the target (mean + std) is below the total "
        "computation of the shortest run that never got there; inconclusive otherwise."
    ),
    "missing": "a value the claim needs is missing (a run, a seed, or a target not reached): inconclusive.",
}


@dataclass(frozen=True)
class Value:
    """A table cell: mean ± std over the n seeds that have a value, of n_seeds."""

    mean: float
    std: float
    n: int
    n_seeds: int

    @property
    def usable(self) -> bool:
        return self.n == self.n_seeds and self.n >= 2 and not math.isnan(self.mean) and not math.isnan(self.std)

    def why_unusable(self, name: str) -> str:
        if self.n == 0 or math.isnan(self.mean):
            return f"{name}: no value"
        if self.n < self.n_seeds:
            return f"{name}: value from only {self.n}/{self.n_seeds} seeds"
        return f"{name}: one seed, no spread to judge by"


@dataclass(frozen=True)
class Judgement:
    verdict: str
    ours: str
    note: str = ""


def _pm(v: Value, digits: int = 4) -> str:
    if math.isnan(v.mean):
        return "n/a"
    return f"{v.mean:.{digits}g} ± {v.std:.2g}" if not math.isnan(v.std) else f"{v.mean:.{digits}g}"


def _unusable(values: dict[str, Value]) -> str | None:
    bad = [v.why_unusable(k) for k, v in values.items() if not v.usable]
    return "; ".join(bad) or None


def better(mat: Value, others: dict[str, Value], lower_is_better: bool) -> Judgement:
    """`better` rule: MAT beats every method in `others`."""
    ours = f"MAT {_pm(mat)}; " + "; ".join(f"{k} {_pm(v)}" for k, v in others.items())
    bad = _unusable({"MAT": mat, **others})
    if bad:
        return Judgement(UNSURE, ours, bad)
    sign = 1.0 if lower_is_better else -1.0
    beaten, lost = [], []
    for name, v in others.items():
        margin = sign * (v.mean - mat.mean)  # > 0: MAT better
        spread = combined_std(mat.std, v.std)
        if margin > spread:
            beaten.append(name)
        elif -margin > spread:
            lost.append(name)
    if lost:
        return Judgement(FAILS, ours, f"better than MAT beyond the spread: {', '.join(lost)}")
    if len(beaten) == len(others):
        return Judgement(HOLDS, ours)
    close = [k for k in others if k not in beaten]
    return Judgement(UNSURE, ours, f"within the combined std of MAT: {', '.join(close)}")


def not_worse(mat: Value, ref: Value, ref_name: str, lower_is_better: bool) -> Judgement:
    """`not_worse` rule: MAT is at least as good as the reference."""
    ours = f"MAT {_pm(mat)}; {ref_name} {_pm(ref)}"
    bad = _unusable({"MAT": mat, ref_name: ref})
    if bad:
        return Judgement(UNSURE, ours, bad)
    worse_by = (mat.mean - ref.mean) if lower_is_better else (ref.mean - mat.mean)
    if worse_by <= 0:
        return Judgement(HOLDS, ours)
    spread = combined_std(mat.std, ref.std)
    if worse_by > spread:
        return Judgement(FAILS, ours, f"MAT worse by {worse_by:.3g} > combined std {spread:.3g}")
    return Judgement(UNSURE, ours, f"MAT worse by {worse_by:.3g}, within the combined std {spread:.3g}")


def _about_verdict(r: float, lo: float, hi: float, paper_pct: float, ours: str) -> Judgement:
    band = (paper_pct / 100 * (1 - ABOUT_TOLERANCE), paper_pct / 100 * (1 + ABOUT_TOLERANCE))
    if hi <= 0:
        return Judgement(FAILS, ours, "no reduction: MAT is not better beyond the spread")
    if lo <= 0:
        return Judgement(UNSURE, ours, "the range contains 0: the difference is within the seeds' spread")
    if hi < band[0] or lo > band[1]:
        size = "smaller" if hi < band[0] else "larger"
        return Judgement(FAILS, ours, f"MAT is better, but the reduction is {size} than the paper's "
                         f"{paper_pct:g}% (band {band[0]:.1%} to {band[1]:.1%})")
    return Judgement(HOLDS, ours)


def about_perplexity(mat: Value, ref: Value, paper_pct: float) -> Judgement:
    """`about` rule on perplexity: losses are log perplexities, so PPL_MAT/PPL_ref = exp(d)."""
    bad = _unusable({"MAT": mat, "vanilla": ref})
    if bad:
        return Judgement(UNSURE, f"MAT {_pm(mat)}; vanilla {_pm(ref)}", bad)
    d, s = mat.mean - ref.mean, combined_std(mat.std, ref.std)
    r, lo, hi = 1 - math.exp(d), 1 - math.exp(d + s), 1 - math.exp(d - s)
    return _about_verdict(r, lo, hi, paper_pct, f"{r:.1%} (range {lo:.1%} to {hi:.1%})")


def about_ratio(mat: Value, ref: Value, paper_pct: float) -> Judgement:
    """`about` rule on a ratio: r = 1 - m_MAT / m_ref (computation, log perplexity)."""
    bad = _unusable({"MAT": mat, "vanilla": ref})
    if bad:
        return Judgement(UNSURE, f"MAT {_pm(mat)}; vanilla {_pm(ref)}", bad)
    if ref.mean <= 0 or mat.mean <= 0:
        return Judgement(UNSURE, f"MAT {_pm(mat)}; vanilla {_pm(ref)}", "a ratio needs positive means")
    q = mat.mean / ref.mean
    rel = math.sqrt((mat.std / mat.mean) ** 2 + (ref.std / ref.mean) ** 2)
    r, lo, hi = 1 - q, 1 - q * (1 + rel), 1 - q * (1 - rel)
    return _about_verdict(r, lo, hi, paper_pct, f"{r:.1%} (range {lo:.1%} to {hi:.1%})")


def sooner(mat: Value, ref: Value, ref_name: str, mat_final_min: float, ref_final_min: float) -> Judgement:
    """`sooner` rule: MAT reaches a target with less computation than the reference.

    As `better` when both always reach it. When one never does, its runs' total compute bounds its
    (unknown) computation to the target from below: the other is sooner if it reached the target,
    even at mean + std, with less than the shortest of those runs spent.
    """
    if mat.usable and ref.usable:
        return better(mat, {ref_name: ref}, lower_is_better=True)
    ours = f"MAT {_pm(mat) if mat.n else 'not reached'}; {ref_name} {_pm(ref) if ref.n else 'not reached'}"
    if mat.usable and ref.n == 0:
        if mat.mean + mat.std < ref_final_min:
            return Judgement(HOLDS, ours, f"{ref_name} never reached the target in runs of >= {ref_final_min:.4g} PFLOPs")
        return Judgement(UNSURE, ours, f"{ref_name} never reached it, but its runs stopped at {ref_final_min:.4g} PFLOPs")
    if ref.usable and mat.n == 0:
        if ref.mean + ref.std < mat_final_min:
            return Judgement(FAILS, ours, f"MAT never reached the target in runs of >= {mat_final_min:.4g} PFLOPs")
        return Judgement(UNSURE, ours, f"MAT never reached it, but its runs stopped at {mat_final_min:.4g} PFLOPs")
    return Judgement(UNSURE, ours, _unusable({"MAT": mat, ref_name: ref}) or "neither reached the target")
