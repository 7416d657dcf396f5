"""Partition builders: a model's heads, experts, filters or layers as `mat.partition.Partition`s.

Each model describes where its modules live (`attention_layout`, `expert_layout`, `filter_layout`,
`layer_prefixes`); this file turns those descriptions into named parameter slices. Everything a
description does not name -- embeddings, norms, BERT's FFN, the MLM head, routers, the attention
output bias, the classifier -- is outside every partition and always trained.
"""

from __future__ import annotations

import torch

from mat.partition import KINDS, Module, ParamSlice, Partition, layer_partition


def head_modules(model: torch.nn.Module) -> list[Module]:
    """Attention heads: `layer{l}.head{h}` owns rows [h*d,(h+1)*d) of the q/k/v weights and biases
    (dim 0) and columns [h*d,(h+1)*d) of the attention output projection's weight (dim 1)."""
    mods = []
    for layer, lay in enumerate(model.attention_layout()):
        d = lay["head_dim"]
        for h in range(lay["heads"]):
            slices = [ParamSlice(p, 0, h * d, (h + 1) * d) for p in lay["rows"]]
            slices += [ParamSlice(p, 1, h * d, (h + 1) * d) for p in lay["cols"]]
            mods.append(Module(f"layer{layer}.head{h}", "head", layer, h, tuple(slices)))
    return mods


def expert_modules(model: torch.nn.Module) -> list[Module]:
    """MoE experts: `layer{l}.expert{e}` owns all of expert e's weights in block l (whole tensors)."""
    return [
        Module(f"layer{layer}.expert{e}", "expert", layer, e, tuple(ParamSlice(p) for p in names))
        for layer, experts in enumerate(model.expert_layout())
        for e, names in enumerate(experts)
    ]


def filter_modules(model: torch.nn.Module) -> list[Module]:
    """Conv filters: `conv{l}.filter{c}` owns output channel c of conv layer l: the kernel's row c,
    the conv bias c, and the BatchNorm scale and shift c (all along dim 0)."""
    return [
        Module(f"conv{layer}.filter{c}", "filter", layer, c, tuple(ParamSlice(p, 0, c, c + 1) for p in lay["params"]))
        for layer, lay in enumerate(model.filter_layout())
        for c in range(lay["filters"])
    ]


_BUILDERS = {
    "head": ("attention_layout", head_modules),
    "expert": ("expert_layout", expert_modules),
    "filter": ("filter_layout", filter_modules),
    "layer": ("layer_prefixes", lambda m: list(layer_partition(m, m.layer_prefixes()).modules)),
}


def removable_modules(model: torch.nn.Module, partition: Partition) -> torch.Tensor:
    """Bool [n_modules]: the modules a pruning can remove from the computation (`mat.backward`,
    `PartialBackward.set_removed`) rather than only zero. Heads of a model that declares
    `heads_removable` (BERT: transformers reshapes q/k/v with -1 heads and has no other per-head
    tensor). Not the Switch Transformer's heads (its relative position bias has one row per head),
    nor filters (the next conv would have to drop the filter's input channel) or experts (the router
    would have to stop sending tokens): those are zeroed, and still computed, when pruned."""
    heads = getattr(model, "heads_removable", False) is True
    return torch.tensor([heads and m.kind == "head" for m in partition.modules], dtype=torch.bool)


def build_partition(model: torch.nn.Module, kinds: list[str]) -> Partition:
    """The partition of `model` into modules of the given kinds, concatenated in the order given
    (so `["head", "expert"]` puts heads first). Slices are checked against the model's parameters."""
    if isinstance(kinds, str) or not kinds:
        raise ValueError(f"partition kinds must be a non-empty list drawn from {KINDS}, got {kinds!r}")
    mods: list[Module] = []
    for kind in kinds:
        if kind not in _BUILDERS:
            raise ValueError(f"partition: unknown kind {kind!r}; expected one of {KINDS}")
        attr, builder = _BUILDERS[kind]
        if not hasattr(model, attr):
            raise ValueError(f"partition: a {type(model).__name__} has no {kind!r} modules (it lacks `{attr}`)")
        mods.extend(builder(model))
    part = Partition(tuple(mods))
    part.check(dict(model.named_parameters()))
    return part
