"""Forward FLOPs of each module of a partition, read from one counted forward pass.

The paper's accounting (backward = 2 x forward, "a lighter back propagation pass only for
appropriate subsets of the modules") needs what a module costs in the forward pass, so that the
backward of a module that is not updated can be left out (`mat.flops`, `flops_paper_estimate`).

A module is a set of parameter slices (`mat.partition`). Its forward FLOPs are read from the
per-module counts of `FlopCounterMode` (keyed "<RootClass>.<path>", a parent's count includes its
children's):
- each weight slice (a parameter with 2 or more dimensions) owns its share of the FLOPs of the
  layer holding it: a head's q/k/v rows and its output-projection columns (d / hidden of each
  projection), a filter's output channel (1 / out_channels of the conv), an expert's whole FFN
  (all of its linears, as many tokens as were routed to it in the counted batch);
- a head also owns its share of the attention core (Q K^T and A V): the FLOPs of the attention
  module holding its q/k/v projections, minus those of that module's child layers, times the
  head's share of the projection rows.
Biases, BatchNorm scales and other 1-d slices cost no counted FLOPs (FlopCounterMode counts
matmuls, convolutions and attention only).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from torch import nn

from mat.partition import Partition


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def _own_children_flops(counts: Mapping[str, int], parent: str) -> int:
    """FLOPs of the direct children of `parent` (keys one level below it)."""
    prefix = parent + "."
    return sum(v for k, v in counts.items() if k.startswith(prefix) and "." not in k[len(prefix):])


def module_forward_flops(
    model: nn.Module, partition: Partition, counts: Mapping[str, int], removed: Sequence[bool] | None = None
) -> list[int]:
    """Forward FLOPs of each module of `partition` (partition order) in the pass that gave `counts`.
    `removed[i]`: module i was out of that pass (a pruned head, `mat.backward`): it costs 0 and the
    layer's FLOPs are shared among the kept rows only.

    `counts`: FlopCounterMode's per-module totals of one forward, {"<RootClass>.<path>": FLOPs}.
    """
    root = type(model).__name__
    shapes = {name: p.shape for name, p in model.named_parameters()}
    gone: dict[tuple[str, int], int] = {}  # (param, dim) -> rows of removed modules
    for i, module in enumerate(partition.modules):
        if removed is not None and removed[i]:
            for s in module.slices:
                if s.dim is not None:
                    gone[(s.param, s.dim)] = gone.get((s.param, s.dim), 0) + s.stop - s.start
    out = []
    for i, module in enumerate(partition.modules):
        if removed is not None and removed[i]:
            out.append(0)
            continue
        total, head_share, attention = 0.0, None, None
        for s in module.slices:
            shape = shapes[s.param]
            if len(shape) < 2:
                continue  # a bias or a norm scale: no counted FLOPs
            layer = f"{root}.{_parent(s.param)}"
            share = 1.0 if s.dim is None else (s.stop - s.start) / (shape[s.dim] - gone.get((s.param, s.dim), 0))
            total += share * counts.get(layer, 0)
            if module.kind == "head" and s.dim == 0 and head_share is None:
                head_share, attention = share, _parent(layer)
        if attention is not None:
            core = counts.get(attention, 0) - _own_children_flops(counts, attention)
            total += head_share * max(core, 0)
        out.append(int(round(total)))
    return out
