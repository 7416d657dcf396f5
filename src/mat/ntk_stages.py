"""Segmented mNTK passes: a model's layer chain as stages, and which stages each pass runs.

Within a memory budget the mNTK takes several passes (`mat.ntk_budget`), each forming the
per-sample gradients of its own layers. Run naively, every pass repeats the model's whole forward
and the backward from the logits down. A model that exposes its layer chain as stages

    h_0 = x,   h_{k+1} = stage_k(h_k, context),   logits = h_n

(`ntk_stages()`: a list of `Stage`; `ntk_context(x)`: what every stage reads besides h, e.g.
Switch's relative position bias or BERT's attention mask) lets each pass run only its own stages:

1. one forward over the stages below the highest pass, without autograd, keeps each pass's input
   boundary h_lo for all S samples;
2. the passes run TOP-DOWN; a pass recomputes its stages [lo, end] from h_lo and backpropagates
   from the gradient of the sum of logits at its top boundary h_{end+1} (the top pass: from the sum
   of logits itself, as the single pass does), capturing its layers' per-sample gradients; the
   gradient at the top boundary of the next pass down is kept for that pass.

d(sum of logits)/d h_k is the same whichever pass computes it, so every layer sees the same output
gradient as in the single pass and the Grams are the same (exact up to float summation order).
Extra cost over the single pass: the forward of step 1 (at most one forward) plus the stages that
two passes share (a stage whose layers the budget splits runs in both). Extra memory: the cached
input boundaries (one hidden state per pass, all S samples) and one boundary gradient.

A pass's stage range: [lo, hi] are the first and last stages holding its hooked parameters; passes
in parameter order must have non-decreasing lo and hi (true when parameters are registered in
forward order); a pass extends up to the stage below the next pass's lo (stages without owned
parameters are run by the pass below them), the top pass up to the logits. A model without the
protocol, a hooked parameter held by a module outside every stage, a context that depends on a
hooked parameter, or non-monotone ranges: the passes run the whole model (`mat.ntk`'s full path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
from torch import nn


class Stage(NamedTuple):
    """One link of a model's layer chain: the module paths whose parameters it uses (prefixes of
    parameter names), and `run(h, context) -> h` (the model's own forward for that part)."""

    modules: tuple[str, ...]
    run: Callable[[torch.Tensor, Any], torch.Tensor]


@dataclass(frozen=True)
class Segment:
    """The stages one pass runs: [lo, end] (end + 1 = n: its top is the logits), and `below`: the
    boundary whose gradient the next pass down needs (None for the lowest pass)."""

    lo: int
    end: int
    below: int | None


def stages_of(model: nn.Module) -> list[Stage] | None:
    """The model's stages, or None if it does not expose them."""
    fn = getattr(model, "ntk_stages", None)
    return list(fn()) if callable(fn) else None


def context_of(model: nn.Module, x: torch.Tensor) -> Any:
    """What every stage reads besides the hidden state (None if the model has no `ntk_context`)."""
    fn = getattr(model, "ntk_context", None)
    return fn(x) if callable(fn) else None


def _stage_index(stages: list[Stage]) -> Callable[[str], int | None]:
    def index(module: str) -> int | None:
        for k, st in enumerate(stages):
            if any(module == p or module.startswith(p + ".") for p in st.modules):
                return k
        return None

    return index


def plan_segments(
    model: nn.Module, stages: list[Stage], groups: list[list[str]], owners: dict[str, list[str]]
) -> list[Segment | None] | None:
    """Per pass (`groups`: the hooked parameter names of each pass, in pass order), the stages it
    runs; None for a pass with no hooked parameter. `owners`: parameter name -> the module paths
    holding it. Returns None where the passes cannot be segmented (see the module docstring)."""
    index = _stage_index(stages)
    ranges: list[tuple[int, int] | None] = []
    for names in groups:
        ks = [index(m) for n in names for m in owners[n]]
        if any(k is None for k in ks):
            return None
        ranges.append((min(ks), max(ks)) if ks else None)
    live = [(i, r) for i, r in enumerate(ranges) if r is not None]
    for (_, (lo0, hi0)), (_, (lo1, hi1)) in zip(live, live[1:]):
        if lo1 < lo0 or hi1 < hi0:
            return None
    out: list[Segment | None] = [None] * len(groups)
    n, below = len(stages), None
    for j, (i, (lo, hi)) in enumerate(live):  # bottom-up: `below` is the top boundary of the pass below
        end = n - 1 if j + 1 == len(live) else max(hi, live[j + 1][1][0] - 1)
        out[i] = Segment(lo, end, below)
        below = end + 1
    return out
