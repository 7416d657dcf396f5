"""SNIP (Lee et al. 2018) applied per module, as the paper does for Table 5 (Appendix B.2).

At initialisation, on one training minibatch, a module's connection sensitivity is the sum of
|g * w| over its parameter slices, normalised by the total over all modules
(`connection_sensitivity`; the trainer calls it after one backward). The `prune_ratio` fraction of
each kind with the lowest scores is pruned (removed from the forward pass, `Decision.pruned`),
ranked over all modules of the kind and, with the protecting strategy on, never the last module of
a layer (`groups.lowest_scoring`). All remaining modules train at every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

from mat.partition import Partition
from mat.policies.base import Decision
from mat.policies.common import PolicyBase
from mat.policies.config import Protecting, number
from mat.policies.groups import lowest_scoring
from mat.policies.registry import register_method


def connection_sensitivity(
    params: Mapping[str, torch.Tensor], grads: Mapping[str, torch.Tensor], partition: Partition
) -> torch.Tensor:
    """Per-module SNIP score, float64 [n_modules] on the CPU, summing to 1.

    `params` and `grads` map parameter names to tensors (e.g. `dict(model.named_parameters())` and
    `{n: p.grad for n, p in ...}` after one minibatch backward)."""
    partition.check(params)
    prod = {}
    for name in partition.param_names:
        g = grads.get(name)
        if g is None:
            raise ValueError(f"snip: no gradient for parameter {name!r}; run one backward pass over a minibatch first")
        if g.shape != params[name].shape:
            raise ValueError(f"snip: gradient of {name!r} has shape {tuple(g.shape)}, parameter {tuple(params[name].shape)}")
        prod[name] = (g.detach().double() * params[name].detach().double()).abs()
    scores = torch.stack([partition.gather(prod, i).sum() for i in range(len(partition))]).cpu()
    total = scores.sum()
    if not bool(torch.isfinite(total)) or float(total) <= 0.0:
        raise ValueError(f"snip: total connection sensitivity is {float(total)}; gradients are all zero or not finite")
    return scores / total


@dataclass(frozen=True)
class SnipConfig(Protecting):
    prune_ratio: float = number(0.5, lo=0.0, hi=1.0, lo_open=True, hi_open=True)  # of each kind, removed


@register_method("snip", config=SnipConfig, label="SNIP", pruning_label="SNIP ({prune_ratio_percent})")
class SnipPolicy(PolicyBase):
    def __init__(self, partition: Partition, seed: int, steps_per_epoch: int, prune_ratio: float, protect: bool) -> None:
        super().__init__(partition, seed, steps_per_epoch)
        self.prune_ratio = prune_ratio
        self.protect = protect
        self.scores: torch.Tensor | None = None
        self.pruned: torch.Tensor | None = None

    def wants(self, epoch: int) -> set[str]:
        return {"snip"} if self.pruned is None else set()

    def observe(self, epoch: int, name: str, values) -> None:
        if name != "snip":
            raise ValueError(f"policy 'snip' takes only 'snip' measurements, got {name!r}")
        if self.pruned is not None:
            raise ValueError(f"policy 'snip': the connection sensitivity was already measured; got another at epoch {epoch}")
        scores = torch.as_tensor(values).detach().to("cpu", torch.float64)
        if scores.shape != (self.n,) or not bool(torch.isfinite(scores).all()):
            raise ValueError(f"policy 'snip': expected {self.n} finite scores, got shape {tuple(scores.shape)}")
        self.scores = scores
        self.pruned = lowest_scoring(self.partition, scores, self.prune_ratio, self.protect)

    def _decision(self, step: int) -> Decision:
        if self.pruned is None:
            raise RuntimeError("policy 'snip': decide() before the connection sensitivity was observed (wants(0) == {'snip'})")
        return Decision(~self.pruned, torch.ones(self.n), pruned=self.pruned.clone())

    def report(self) -> dict:
        if self.pruned is None:
            return {"method": self.method, "epoch": self.epoch, "modules": []}
        out = super().report()
        for i, row in enumerate(out["modules"]):
            row["snip_score"] = float(self.scores[i])
        return out

    def _state(self) -> dict:
        return {"scores": self.scores, "pruned": self.pruned, "hyper": {"prune_ratio": self.prune_ratio, "protect": self.protect}}

    def _load_state(self, state: dict) -> None:
        hyper = {"prune_ratio": self.prune_ratio, "protect": self.protect}
        if state["hyper"] != hyper:
            raise ValueError(f"policy state: snip settings {state['hyper']} differ from this policy's {hyper}")
        self.scores, self.pruned = state["scores"], state["pruned"]
