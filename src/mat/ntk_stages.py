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
   gradient at h_lo is kept for the next pass down, whose top boundary it is. A stage whose layers
   the budget splits between two passes is run by the upper one, which also keeps the inputs and
   output gradients of the lower pass's layers in it; the lower pass forms their per-sample
   gradients from those, without running the stage again.

d(sum of logits)/d h_k is the same whichever pass computes it, so every layer sees the same output
gradient as in the single pass and the Grams are the same (exact up to float summation order).
Every stage from the lowest owned one up runs once, as in the single pass; the extra cost is the
forward of step 1 (at most one forward). Extra memory: the cached input boundaries (one hidden
state per pass, all S samples), two boundary gradients, and the kept inputs and output gradients
of a split stage's lower layers (activations of that stage, not per-sample gradients); the budget
reserves them per pass (`mat.ntk_budget`).

A pass's stage range: [lo, hi] are the first and last stages holding its hooked parameters; in
parameter order a pass's hi must not exceed the next pass's lo (true when parameters are registered
in forward order); a pass runs up to the stage below the next pass's lo (stages without owned
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
    """The stages one pass runs, [lo, end] (empty when end < lo: every layer of the pass sits in a
    stage a higher pass runs); `below`: whether a lower pass needs the gradient at its input
    boundary h_lo; `deferred`: module paths of LOWER passes' layers in stage lo, whose inputs and
    output gradients this pass keeps for them (a stage split between passes runs once)."""

    lo: int
    end: int
    below: bool
    deferred: tuple[str, ...] = ()

    @property
    def runs(self) -> bool:
        return self.end >= self.lo


def stages_of(model: nn.Module) -> list[Stage] | None:
    """The model's stages, or None if it does not expose them."""
    fn = getattr(model, "ntk_stages", None)
    return list(fn()) if callable(fn) else None


def context_of(model: nn.Module, x: torch.Tensor) -> Any:
    """What every stage reads besides the hidden state (None if the model has no `ntk_context`)."""
    fn = getattr(model, "ntk_context", None)
    return fn(x) if callable(fn) else None


def stage_index(stages: list[Stage]) -> Callable[[str], int | None]:
    def index(module: str) -> int | None:
        for k, st in enumerate(stages):
            if any(module == p or module.startswith(p + ".") for p in st.modules):
                return k
        return None

    return index


def plan_segments(
    stages: list[Stage], groups: list[list[str]], owners: dict[str, list[str]]
) -> list[Segment | None] | None:
    """Per pass (`groups`: the hooked parameter names of each pass, in pass order), the stages it
    runs; None for a pass with no hooked parameter. `owners`: parameter name -> the module paths
    holding it. Returns None where the passes cannot be segmented (see the module docstring)."""
    index = stage_index(stages)
    where: list[dict[str, int]] = []  # per pass: module path -> stage
    for names in groups:
        ks = {m: index(m) for n in names for m in owners[n]}
        if any(k is None for k in ks.values()):
            return None
        where.append(ks)
    live = [i for i, ks in enumerate(where) if ks]
    ranges = [(min(where[i].values()), max(where[i].values())) for i in live]
    if any(hi0 > lo1 for (_, hi0), (lo1, _) in zip(ranges, ranges[1:])):
        return None  # passes must follow each other up the chain (at most one shared stage)
    out: list[Segment | None] = [None] * len(groups)
    n = len(stages)
    ends = [lo1 - 1 for lo1, _ in ranges[1:]] + [n - 1]
    for j, i in enumerate(live):
        lo, end = ranges[j][0], ends[j]
        runs = end >= lo
        deferred = tuple(
            m for jj in range(j) for m, k in where[live[jj]].items() if runs and k == lo and k > ends[jj]
        )
        below = runs and any(ends[jj] >= ranges[jj][0] for jj in range(j))
        out[i] = Segment(lo, end, below, deferred)
    return out
