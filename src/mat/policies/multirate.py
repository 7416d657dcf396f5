"""Multirate training (Vlaar & Leimkuhler, ICML 2022), in two variants.

Both draw one fixed random split of each layer's modules into fast (`fraction`, at least one per
layer when protecting) and slow modules, once, from the policy's generator. Fast modules are
updated every step with the normal step size. The variants differ in what slow modules do:

- `paper` (default): the baseline as the MAT paper describes it (Appendix B.1): "slow ones updated
  every k = 5 step of stepsize k*eta". A slow module is updated only at steps with
  step % k == k - 1, with lr_scale k and that step's gradient (no accumulation of the skipped
  steps' gradients); at all other steps it is frozen, optimizer state included.
- `drift`: the authors' released optimizer ("linear drift"). Every k steps (same steps as above)
  the slow modules' optimizer state absorbs the current gradient (use_grad True); on EVERY step
  the slow parameters move with lr_scale 1/k along the stored state (active True, use_grad False
  between refreshes). Over k steps a slow module thus travels about one full step, spread evenly,
  whereas in `paper` it jumps k steps' worth at once. (The released code's slow step references
  an undefined `weight_decay`; here weight decay follows the optimizer: AdamW decays whatever
  moves, SGD's decay is part of the gradient and so enters only at refreshes.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mat.partition import Partition
from mat.policies.base import Decision
from mat.policies.common import PolicyBase
from mat.policies.config import Protecting, choice, integer, number
from mat.policies.groups import random_subset
from mat.policies.registry import register_method

VARIANTS = ("paper", "drift")


@dataclass(frozen=True)
class MultirateConfig(Protecting):
    fraction: float = number(0.5, lo=0.0, hi=1.0, lo_open=True)  # fraction of fast modules (per layer)
    k: int = integer(5, lo=1)  # slow modules move every k-th step
    variant: str = choice("paper", VARIANTS)  # "paper" (as MAT describes it) or "drift" (authors' optimizer)


@register_method("multirate", config=MultirateConfig, label="Multirate")
class MultiratePolicy(PolicyBase):
    def __init__(
        self, partition: Partition, seed: int, steps_per_epoch: int, fraction: float, k: int, variant: str, protect: bool
    ) -> None:
        super().__init__(partition, seed, steps_per_epoch)
        if variant not in VARIANTS:
            raise ValueError(f"multirate: variant {variant!r}; expected 'paper' or 'drift'")
        self.k = k
        self.variant = variant
        self.fast = random_subset(partition, fraction, protect, self.rng)  # fixed for the whole run

    def is_slow_step(self, step: int) -> bool:
        return step % self.k == self.k - 1

    def _decision(self, step: int) -> Decision:
        slow = ~self.fast
        refresh = self.is_slow_step(step)
        if self.variant == "paper":
            active = self.fast | slow if refresh else self.fast.clone()
            lr_scale = torch.where(slow, float(self.k), 1.0)
            return Decision(active, lr_scale)
        active = torch.ones(self.n, dtype=torch.bool)
        lr_scale = torch.where(slow, 1.0 / self.k, 1.0)
        use_grad = self.fast | slow if refresh else self.fast.clone()
        return Decision(active, lr_scale, use_grad=use_grad)

    def _current(self) -> Decision:
        # report the plan of a refresh step: which modules are fast and which slow, with their scales
        return self._decision(self.k - 1)

    def report(self) -> dict:
        out = super().report()
        for i, row in enumerate(out["modules"]):
            row["fast"] = bool(self.fast[i])
        return out

    def _state(self) -> dict:
        return {"fast": self.fast, "k": self.k, "variant": self.variant}

    def _load_state(self, state: dict) -> None:
        if state["k"] != self.k or state["variant"] != self.variant:
            raise ValueError(
                f"policy state: multirate k={state['k']} variant={state['variant']!r}, "
                f"this policy has k={self.k} variant={self.variant!r}"
            )
        self.fast = state["fast"]
