"""Memory budget of the mNTK: which parameters each pass of `mat.ntk.module_grams` takes.

The Grams Theta^l = J_l J_l^T (Definition 1) need, for every owned parameter, its per-sample
gradients of all S samples together. Held all at once they are S x |owned| floats: at the paper's
S = 64, 65 GB for the heads and experts of the paper's Switch Transformer (254.8M parameters),
26 GB for BERT-large's heads. So the owned parameters are split into passes: consecutive layers
(in the model's parameter order, i.e. forward order) packed greedily while

    S x (sum of the pass's owned numel) x element size      the pass's per-sample gradients
  + copies x S x (largest sliced numel) x element size      the one transient copy made while a
                                                            sliced parameter's Gram blocks are
                                                            formed (heads: rows of q/k/v)

  + the pass's reserve: what the segmented passes (`mat.ntk_stages`) hold besides per-sample
    gradients while it runs (`Pass.reserved_bytes`):
      (c + 2) x one cached boundary                        c = the distinct input boundaries h_lo > 0
                                                           of this pass and the ones below it, still
                                                           cached; 2 = the boundary gradients at its
                                                           top and at its input
    + the inputs and output gradients (all S samples)      layers of this pass and lower ones in a
      of the layers whose stage the budget splits          stage shared with the pass above / below
                                                           (kept for them by the upper pass)

stays within `ntk.memory_gb` (`Pass.bytes`). So the budget bounds all the mNTK holds across passes;
what it holds besides is one chunk's activations. Each pass is one batched forward + backward per chunk
of samples (`mat.ntk._hooked_passes`), over its own stages only where the model exposes them
(`mat.ntk_stages`); its per-sample gradients are freed before the next pass. The
budget depends on S and on the widest layer, not on the model's depth. `memory_gb: null` is one
pass over everything (the unbudgeted path). A layer is the module that holds a parameter directly
(its name without the last component); a layer that alone exceeds the budget is an error
(`NtkBudgetError`) naming it, raised by the run-config check before training. The reserve needs
each layer's stage, the bytes of one boundary and each layer's activation bytes, which `mat.ntk.passes`
reads off the model with a one-sample probe; without them (a model without stages, or no sample
given) nothing is reserved.

Parameters taking torch.func's vmap route (embeddings, T5's relative position bias) are counted
twice (vmap concatenates its chunks). Conv filters taking the kernel route keep im2col patches
instead of per-sample gradients; they are counted at their direct size, which bounds them (the
route is taken only where the patches are the smaller, `mat.ntk._kernel_is_cheaper`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from torch import nn

GB = 1e9  # bytes; memory_gb is decimal gigabytes
# Transient copies of one parameter's S rows on several GPUs (`mat.train.distributed`): the
# all-gathered rows, their concatenation, then the Gram reshape.
GATHER_COPIES = 3


class NtkBudgetError(ValueError):
    """A layer whose per-sample gradients alone exceed the mNTK's memory budget."""


@dataclass(frozen=True)
class Pass:
    """One batched forward + backward of the mNTK: the owned parameters whose per-sample gradients
    it forms, the layers holding them, and the bytes it holds (see the module docstring)."""

    names: tuple[str, ...]
    layers: tuple[str, ...]
    grad_bytes: int  # S x owned numel x element size
    transient_bytes: int  # copies x S x largest copied (sliced) numel x element size
    reserved_bytes: int = 0  # cached boundaries, boundary gradients, kept activations of split stages

    @property
    def bytes(self) -> int:
        return self.grad_bytes + self.transient_bytes + self.reserved_bytes


@dataclass(frozen=True)
class Segmenting:
    """What the reserve of segmented passes is counted from: `stage` {layer: its stage index} for
    the layers the passes run by stages (others: not counted), `boundary` the bytes of one cached
    boundary (all S samples; the widest), `acts` {layer: bytes of its inputs and output gradients
    over all its calls, all S samples}."""

    stage: dict[str, int]
    boundary: int
    acts: dict[str, int]


def budget_bytes(memory_gb: float | None) -> int | None:
    """`ntk.memory_gb` in bytes (None: no budget)."""
    return None if memory_gb is None else int(memory_gb * GB)


def _layer_of(name: str) -> str:
    return name.rpartition(".")[0] or name


def _reserve(seg: Segmenting | None, below: list[list[str]], layers: list[str], next_stage: int | None) -> int:
    """Bytes a pass over `layers` holds besides per-sample gradients when the passes `below` it
    (their layers) are planned and the next pass starts in stage `next_stage` (None: top pass)."""
    if seg is None:
        return 0
    staged = [seg.stage[x] for x in layers if x in seg.stage]
    if not staged:  # no staged layer: the pass runs the whole model, caches nothing
        return 0
    lo = min(staged)
    los = {min(seg.stage[x] for x in ls if x in seg.stage) for ls in below if any(x in seg.stage for x in ls)}
    cached = len({k for k in los | {lo} if k > 0})
    lower = sum(seg.acts.get(x, 0) for ls in below for x in ls if seg.stage.get(x) == lo)
    upper = sum(seg.acts.get(x, 0) for x in layers if next_stage is not None and seg.stage.get(x) == next_stage)
    return (cached + 2) * seg.boundary + lower + upper


def plan_passes(
    model: nn.Module,
    names: Iterable[str],
    samples: int,
    memory_gb: float | None,
    copies: int = 1,
    doubled: Iterable[str] = (),
    copied: Iterable[str] | None = None,
    segmenting: Segmenting | None = None,
) -> list[Pass]:
    """The passes of an mNTK over the parameters `names` on `samples` inputs within `memory_gb`.

    `copies`: transient copies of one parameter's S rows while its Grams are formed (1 here; the
    multi-GPU path also holds the all-gathered rows), made only for the parameters in `copied`
    (None: all; a whole-tensor module's rows are a view, no copy). `doubled`: parameters whose
    per-sample gradients are held twice (the vmap route). `segmenting`: what each pass's reserve is
    counted from (None: no reserve). Layers are packed greedily bottom-up; a pass is checked with
    the reserve of the worst next pass (one starting in the stage of its last layer). Raises
    NtkBudgetError for a layer that alone, with its reserve, exceeds the budget."""
    wanted, twice = set(names), set(doubled)
    copy = wanted if copied is None else set(copied)
    params = [(n, p) for n, p in model.named_parameters() if n in wanted]
    missing = wanted - {n for n, _ in params}
    if missing:
        raise KeyError(f"ntk: the model has no parameter(s) {sorted(missing)[:5]}")
    rows = {n: samples * p.numel() * p.element_size() * (2 if n in twice else 1) for n, p in params}
    units: list[tuple[str, list[str]]] = []  # consecutive parameters of one layer
    for n, _ in params:
        if units and units[-1][0] == _layer_of(n):
            units[-1][1].append(n)
        else:
            units.append((_layer_of(n), [n]))

    def cost(ns: list[str]) -> tuple[int, int]:
        return sum(rows[n] for n in ns), copies * max((rows[n] for n in ns if n in copy), default=0)

    limit = budget_bytes(memory_gb)
    if limit is None:
        ns = [n for _, unit in units for n in unit]
        return [Pass(tuple(ns), tuple(dict.fromkeys(layer for layer, _ in units)), *cost(ns))] if ns else []
    seg = segmenting

    def last_stage(layers: list[str]) -> int | None:
        return seg.stage.get(layers[-1]) if seg is not None else None

    passes: list[Pass] = []
    below: list[list[str]] = []  # the layers of each planned pass
    ns: list[str] = []
    layers: list[str] = []
    for i, (layer, unit) in enumerate(units):
        if ns:
            grads, extra = cost(ns + unit)
            if grads + extra + _reserve(seg, below, layers + [layer], last_stage([layer])) > limit:
                nxt = seg.stage.get(layer) if seg is not None else None
                passes.append(Pass(tuple(ns), tuple(layers), *cost(ns), _reserve(seg, below, layers, nxt)))
                below.append(layers)
                ns, layers = [], []
        if not ns:
            grads, extra = cost(unit)
            held = _reserve(seg, below, [layer], last_stage([layer]) if i + 1 < len(units) else None)
            if grads + extra + held > limit:
                numel = sum(dict(params)[n].numel() for n in unit)
                raise NtkBudgetError(
                    f"ntk.memory_gb: layer {layer!r} alone needs {(grads + extra) / GB:.3g} GB for its per-sample "
                    f"gradients ({numel:,} owned parameters x S={samples} samples, plus one transient copy) and "
                    f"{held / GB:.3g} GB reserved for cached boundaries and kept activations, more than the budget "
                    f"of {memory_gb:g} GB; raise ntk.memory_gb or lower ntk.samples"
                )
        ns += unit
        layers.append(layer)
    if ns:
        passes.append(Pass(tuple(ns), tuple(layers), *cost(ns), _reserve(seg, below, layers, None)))
    return passes
