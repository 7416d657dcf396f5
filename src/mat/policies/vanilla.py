"""Vanilla training: every module is updated at every step with the full step size."""

from __future__ import annotations

from mat.policies.base import Decision
from mat.policies.common import PolicyBase


class VanillaPolicy(PolicyBase):
    method = "vanilla"

    def _decision(self, step: int) -> Decision:
        return Decision.everyone(self.n)
