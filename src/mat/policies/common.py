"""What every policy shares: its random generator, the epoch bookkeeping, and the resumable state.

A policy's choices depend only on the run seed and on the measurements it was given, never on
wall-clock or global random state: each policy owns a `torch.Generator` seeded from the run seed,
and `state_dict()` carries that generator's state along with everything the policy has decided, so
a run resumed from a checkpoint makes bit-for-bit the same choices as an uninterrupted one.

Call order per epoch (the trainer's side of the contract): `wants(e)` -> `observe(e, ...)` for each
wanted measurement -> `start_epoch(e)` -> `decide(step)` for that epoch's steps. `decide` checks that
the step belongs to the started epoch (`step // steps_per_epoch`), which catches a trainer that
forgot `start_epoch`. `start_epoch` of the already-started epoch is a no-op, so a resumed trainer
may call it again.
"""

from __future__ import annotations

import operator
from typing import Any, Mapping

import torch

from mat.partition import Partition
from mat.policies.base import Decision

STATE_VERSION = 1


class PolicyBase:
    method = "base"

    def __init__(self, partition: Partition, seed: int, steps_per_epoch: int) -> None:
        if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
            raise ValueError(f"policy: steps_per_epoch must be an integer >= 1, got {steps_per_epoch!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"policy: seed must be an integer, got {seed!r}")
        if len(partition) == 0:
            raise ValueError("policy: the partition has no modules")
        self.partition = partition
        self.n = len(partition)
        self.seed = seed
        self.steps_per_epoch = steps_per_epoch
        self.rng = torch.Generator().manual_seed(seed)
        self.epoch = -1  # last epoch started; -1 before the first

    # ------------------------------------------------------------------ Policy protocol
    def wants(self, epoch: int) -> set[str]:
        return set()

    def observe(self, epoch: int, name: str, values: Mapping[str, torch.Tensor] | torch.Tensor) -> None:
        raise ValueError(f"policy {self.method!r} takes no measurement; got {name!r} at epoch {epoch}")

    def start_epoch(self, epoch: int) -> None:
        epoch = _index("epoch", epoch)
        if epoch < self.epoch:
            raise ValueError(f"policy {self.method!r}: start_epoch({epoch}) after epoch {self.epoch} was started")
        for e in range(self.epoch + 1, epoch + 1):  # catch up on skipped epochs, so choices depend on e only
            self._new_epoch(e)
        self.epoch = epoch

    def decide(self, step: int) -> Decision:
        step = _index("step", step)
        if step // self.steps_per_epoch != self.epoch:
            raise RuntimeError(
                f"policy {self.method!r}: step {step} lies in epoch {step // self.steps_per_epoch} "
                f"({self.steps_per_epoch} steps per epoch) but the started epoch is {self.epoch}; "
                "call start_epoch(epoch) before the epoch's steps"
            )
        return self._decision(step)

    def finished(self) -> bool:
        return False

    def state_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "method": self.method,
            "modules": list(self.partition.names),
            "seed": self.seed,
            "steps_per_epoch": self.steps_per_epoch,
            "epoch": self.epoch,
            "rng": self.rng.get_state().clone(),
            **{k: _copy(v) for k, v in self._state().items()},
        }

    def load_state_dict(self, state: dict) -> None:
        for key, want in (("version", STATE_VERSION), ("method", self.method), ("modules", list(self.partition.names))):
            if state.get(key) != want:
                got = state.get(key)
                if key == "modules" and isinstance(got, list):
                    got = f"{len(got)} modules starting {got[:3]}"
                    want = f"{len(want)} modules starting {want[:3]}"
                raise ValueError(f"policy state: {key} is {got!r}, this policy has {want!r}")
        if state["steps_per_epoch"] != self.steps_per_epoch:
            raise ValueError(
                f"policy state: steps_per_epoch is {state['steps_per_epoch']}, this policy has {self.steps_per_epoch}"
            )
        self.seed = state["seed"]
        self.epoch = state["epoch"]
        self.rng.set_state(state["rng"].clone())
        self._load_state({k: _copy(v) for k, v in state.items()})

    def report(self) -> dict:
        """For logging: {"method", "epoch", "modules": [one dict per module]} for the current
        epoch's plan (`pandas.DataFrame(report["modules"])` makes it a table)."""
        d = self._current()
        pruned = d.pruned if d.pruned is not None else torch.zeros(self.n, dtype=torch.bool)
        rows = [
            {
                "module": m.name,
                "kind": m.kind,
                "layer": m.layer,
                "active": bool(d.active[i]),
                "lr_scale": float(d.lr_scale[i]),
                "pruned": bool(pruned[i]),
            }
            for i, m in enumerate(self.partition.modules)
        ]
        return {"method": self.method, "epoch": self.epoch, "modules": rows}

    # ------------------------------------------------------------------ for subclasses
    def _new_epoch(self, epoch: int) -> None:
        """Called once for every epoch, in order, by start_epoch."""

    def _decision(self, step: int) -> Decision:
        raise NotImplementedError

    def _current(self) -> Decision:
        """The plan of a typical step of the current epoch (for report())."""
        return self._decision(max(self.epoch, 0) * self.steps_per_epoch)

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:
        pass


def _index(label: str, value: Any) -> int:
    """A non-negative integer (Python or numpy/torch integer scalars), else a clear error."""
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"policy: {label} must be an integer >= 0, got {value!r}") from None
    if value < 0:
        raise ValueError(f"policy: {label} must be an integer >= 0, got {value!r}")
    return value


def _copy(v: Any) -> Any:
    """Deep enough a copy that a state dict and the live policy never share a tensor."""
    if isinstance(v, torch.Tensor):
        return v.clone()
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v
