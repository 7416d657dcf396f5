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

    active: torch.Tensor  # bool, [n_modules]
    lr_scale: torch.Tensor  # float, [n_modules]

    @classmethod
    def everyone(cls, n: int) -> "Decision":
        return cls(torch.ones(n, dtype=torch.bool), torch.ones(n))


class Policy(Protocol):
    """A training method. `rng` is a torch.Generator owned by the policy (seeded from the run seed),
    so that a resumed run makes the same choices as an uninterrupted one."""

    partition: Partition

    def wants_mntk(self, epoch: int) -> bool:
        """Whether the policy needs the mNTK eigenvalues at the start of `epoch`."""

    def observe_mntk(self, epoch: int, eigenvalues: Mapping[str, torch.Tensor]) -> None:
        """Receive {module name: eigenvalues, descending} computed at the start of `epoch`."""

    def start_epoch(self, epoch: int) -> None:
        """Called at the start of each epoch (after `observe_mntk` when the mNTK was computed)."""

    def decide(self, step: int) -> Decision:
        """The update plan for global step `step` (0-based)."""

    def finished(self) -> bool:
        """True when the method has nothing left to train (MAT, Algorithm 1 line 2)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...
