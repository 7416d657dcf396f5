"""A run's plan: how many steps, how many per epoch, and how big each step's batch is.

One definition, used by the trainer (`Trainer.plan`) and by the benchmarks that forecast runs
without training them (`mat.bench.compute`), so the two can never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RunPlan:
    """The steps of a run of `train.batch_size` over `n_train` examples (None: unknown), for
    `train.max_steps` steps if set, else `train.epochs` epochs. An epoch is ceil(n_train / batch)
    steps; its last batch takes the examples left over."""

    batch_size: int
    total_steps: int
    steps_per_epoch: int | None
    n_train: int | None

    @classmethod
    def from_config(cls, train: dict, n_train: int | None) -> "RunPlan":
        """The plan of a run config's `train:` block over `n_train` training examples."""
        bs = int(train["batch_size"])
        spe = math.ceil(n_train / bs) if n_train is not None else None
        if train["max_steps"] is not None:
            total = int(train["max_steps"])
        else:
            if spe is None:
                raise ValueError("train.epochs: an epoch-based run needs n_train to count its steps")
            total = int(train["epochs"]) * spe
        return cls(bs, total, spe, n_train)

    def epoch(self, step: int) -> int:
        """The epoch a (0-based) step belongs to."""
        return step // self.steps_per_epoch

    def epochs_run(self, steps: int) -> int:
        """Epochs begun by a run that took `steps` steps."""
        return math.ceil(steps / self.steps_per_epoch)

    def batch_rows(self, step: int) -> slice:
        """Positions of the epoch's permutation that step `step` trains on."""
        at = (step % self.steps_per_epoch) * self.batch_size
        return slice(at, at + self.batch_size)

    @property
    def last_batch(self) -> int | None:
        """Size of an epoch's last batch (None when n_train is unknown)."""
        if self.n_train is None:
            return None
        return self.n_train - (self.steps_per_epoch - 1) * self.batch_size
