"""What every training method is: a policy that decides, each step, which modules are updated and
with what step-size factor (paper Sec. 3; baselines of Appendix B.1).

The trainer only talks to this interface. It never branches on the method's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol

import torch

from mat.partition import Partition


@dataclass
class Decision:
    """One step's update plan: `active[i]` says whether module i is updated, `lr_scale[i]` scales
    its step size (1.0 for everyone except Multirate's slow modules). Parameters outside the
    partition are always updated with scale 1."""

    active: torch.Tensor  # bool, [n_modules]: parameters (and optimizer state) of module i may change
    lr_scale: torch.Tensor  # float, [n_modules]: step-size factor of module i
    # bool, [n_modules]: whether module i's optimizer state absorbs this step's gradient. None means
    # "same as active". Only Multirate's linear-drift variant moves a module without a new gradient.
    use_grad: torch.Tensor | None = None
    # bool, [n_modules]: modules removed from the forward pass (pruning, Table 5). The trainer zeroes
    # a pruned module's slices once, a pruned module is never active again, and pruned heads leave
    # the computation altogether (`PartialBackward.set_removed`).
    pruned: torch.Tensor | None = None

    @classmethod
    def everyone(cls, n: int) -> "Decision":
        return cls(torch.ones(n, dtype=torch.bool), torch.ones(n))


class Policy(Protocol):
    """A training method. `rng` is a torch.Generator owned by the policy (seeded from the run seed),
    so that a resumed run makes the same choices as an uninterrupted one."""

    partition: Partition

    def wants(self, epoch: int) -> set[str]:
        """Measurements the policy needs at the start of `epoch`: names of the trainer's measurement
        registry (`mat.train.measure`: "mntk", "snip"); the trainer takes each and hands it to
        `observe`. A new measurement is one registered function there, nothing in the trainer."""

    def observe(self, epoch: int, name: str, values: Mapping[str, torch.Tensor] | torch.Tensor) -> None:
        """Receive a measurement taken at the start of `epoch`:
        "mntk": {module name: mNTK eigenvalues, descending} (Definition 1, S samples);
        "snip": per-module connection sensitivity, float [n_modules] (sum of |g * w| over the
        module's slices on one training minibatch, Lee et al. 2018)."""

    def start_epoch(self, epoch: int) -> None:
        """Called at the start of each epoch (after `observe_mntk` when the mNTK was computed)."""

    def decide(self, step: int) -> Decision:
        """The update plan for global step `step` (0-based)."""

    def finished(self) -> bool:
        """True when the method has nothing left to train (MAT, Algorithm 1 line 2)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...
