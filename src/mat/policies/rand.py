"""Rand (Appendix B.1): at the start of every epoch, a fresh random `fraction` of the modules of
each layer is chosen, and only those are updated during that epoch ("BERT-Rand randomly selects
and updates 50% heads in every epoch"; for VGG, 50% of the filters in each layer).

The draw is per protection unit (`groups.protection_units`: the modules of one kind in one layer),
so every layer gets exactly `round(fraction * n_layer)` updated modules, at least one when the
protecting strategy is on. Draws come from the policy's own generator, one draw per epoch in epoch
order, so epoch e's selection depends only on the seed and e.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mat.partition import Partition
from mat.policies.base import Decision
from mat.policies.common import PolicyBase
from mat.policies.config import Protecting, number
from mat.policies.groups import random_subset
from mat.policies.registry import register_method


@dataclass(frozen=True)
class RandConfig(Protecting):
    fraction: float = number(0.5, lo=0.0, hi=1.0, lo_open=True)  # of each layer's modules, redrawn every epoch


@register_method("rand", config=RandConfig, label="{model}-Rand")
class RandPolicy(PolicyBase):
    def __init__(self, partition: Partition, seed: int, steps_per_epoch: int, fraction: float, protect: bool) -> None:
        super().__init__(partition, seed, steps_per_epoch)
        self.fraction = fraction
        self.protect = protect
        self.selected = torch.zeros(self.n, dtype=torch.bool)  # this epoch's updated modules

    def _new_epoch(self, epoch: int) -> None:
        self.selected = random_subset(self.partition, self.fraction, self.protect, self.rng)

    def _decision(self, step: int) -> Decision:
        return Decision(self.selected.clone(), torch.ones(self.n))

    def _state(self) -> dict:
        return {"selected": self.selected, "hyper": {"fraction": self.fraction, "protect": self.protect}}

    def _load_state(self, state: dict) -> None:
        hyper = {"fraction": self.fraction, "protect": self.protect}
        if state["hyper"] != hyper:
            raise ValueError(f"policy state: rand settings {state['hyper']} differ from this policy's {hyper}")
        self.selected = state["selected"]
