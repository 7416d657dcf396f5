"""Vanilla training: every module is updated at every step with the full step size."""

from __future__ import annotations

from dataclasses import dataclass

from mat.partition import Partition
from mat.policies.base import Decision
from mat.policies.common import PolicyBase
from mat.policies.config import Protecting
from mat.policies.registry import register_method


@dataclass(frozen=True)
class VanillaConfig(Protecting):
    """Only `protect`, accepted like every method's, and moot: every module trains."""


@register_method("vanilla", config=VanillaConfig, label="{model}", pruning_label="Vanilla")
class VanillaPolicy(PolicyBase):
    def __init__(self, partition: Partition, seed: int, steps_per_epoch: int, protect: bool = True) -> None:
        super().__init__(partition, seed, steps_per_epoch)

    def _decision(self, step: int) -> Decision:
        return Decision.everyone(self.n)
