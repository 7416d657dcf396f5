"""Measurements taken at the start of an epoch, for the policy (what `policy.wants(epoch)` names)
and for the figures: the modular NTK of every module (Definition 1; Algorithm 1, lines 3-10),
the effective rank of the heads' attention matrices, and SNIP's connection sensitivity.

The measurements a policy may ask for are registered here by name (`register_measurement`); the
trainer takes each name `policy.wants(epoch)` returns from this registry, in registration order,
and hands the result to `policy.observe(epoch, name, value)`. A measurement is a function
`(run, epoch) -> value`, where `run` is the trainer seen through `Run` below. A new measurement is
one registered function here (plus the policy that wants it), nothing in the trainer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol

import torch

from mat.partition import Partition


# ------------------------------------------------------------------------------ registry
class Run(Protocol):
    """What a measurement may use of the run being trained (mat.train.loop.Trainer provides it)."""

    model: torch.nn.Module  # the eager model (not the compiled forward)
    partition: Partition  # the run's partition: the modules the policy acts on

    def mntk_for_policy(self, epoch: int) -> dict[str, torch.Tensor]:
        """The run partition's mNTK eigenvalues at this epoch (the trainer also logs them)."""

    def minibatch(self, epoch: int, purpose: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One training minibatch (inputs, targets), a function of (seed, purpose, epoch)."""

    def training_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training objective on the eager model (task loss + auxiliary loss)."""

    def metered(self, inputs: torch.Tensor, compute: Callable[[], Any], key: str | None = None) -> Any:
        """`compute()`, its FLOPs counted as the method's measurement cost (`mat.flops`)."""


@dataclass(frozen=True)
class Measurement:
    name: str  # what a policy's `wants` returns and its `observe` receives
    take: Callable[[Run, int], Any]  # (run, epoch) -> the value handed to policy.observe


_MEASUREMENTS: dict[str, Measurement] = {}


def register_measurement(name: str) -> Callable[[Callable[[Run, int], Any]], Callable[[Run, int], Any]]:
    """Decorator: register `take(run, epoch)` as the measurement `name`."""

    def register(take: Callable[[Run, int], Any]) -> Callable[[Run, int], Any]:
        old = _MEASUREMENTS.get(name)
        if old is not None and old.take.__qualname__ != take.__qualname__:
            raise ValueError(f"measurement {name!r} is already registered ({old.take.__qualname__})")
        _MEASUREMENTS[name] = Measurement(name, take)
        return take

    return register


def unregister_measurement(name: str) -> None:
    """Remove a measurement (tests that register a toy one clean up with this)."""
    _MEASUREMENTS.pop(name, None)


def measurement_names() -> tuple[str, ...]:
    return tuple(_MEASUREMENTS)


def wanted(names: Iterable[str]) -> list[str]:
    """The measurements `names` (a policy's `wants`) in registration order; an unknown name is an
    error naming the registered ones."""
    names = set(names)
    unknown = sorted(n for n in names if n not in _MEASUREMENTS)
    if unknown:
        raise ValueError(f"policy wants measurement {unknown[0]!r}; registered measurements: {measurement_names()}")
    return [n for n in _MEASUREMENTS if n in names]


def take(name: str, run: Run, epoch: int) -> Any:
    """Take the registered measurement `name` at the start of `epoch`."""
    wanted([name])
    return _MEASUREMENTS[name].take(run, epoch)


@register_measurement("mntk")
def _take_mntk(run: Run, epoch: int) -> dict[str, torch.Tensor]:
    """{module name: mNTK eigenvalues, descending} of the run's partition (Definition 1, S samples;
    Algorithm 1, lines 3-7), measured by the trainer, which logs it with the logged partitions."""
    return run.mntk_for_policy(epoch)


@register_measurement("snip")
def _take_snip(run: Run, epoch: int) -> torch.Tensor:
    """SNIP's per-module connection sensitivity (`snip` below) on one training minibatch drawn
    from (seed, epoch), in training mode."""
    inputs, targets = run.minibatch(epoch, "snip")
    run.model.train()
    return run.metered(inputs, lambda: snip(run.model, run.partition, lambda: run.training_loss(inputs, targets)))


# ------------------------------------------------------------------------------ the measurements


def mntk(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    partition: Partition,
    chunk_size: int,
    memory_gb: float | None = None,
    pass_bytes: list[int] | None = None,
) -> dict[str, torch.Tensor]:
    """{module name: eigenvalues of its mNTK, descending} on the S `inputs` (Algorithm 1, lines 3-7).

    The mNTK is taken of the deterministic function (eval mode; mat.ntk restores the mode), in
    passes whose per-sample gradients fit `memory_gb` (`ntk.memory_gb`; their bytes appended to
    `pass_bytes` when given)."""
    from mat.ntk import module_ntk

    return module_ntk(model, inputs, partition, chunk_size=chunk_size, memory_gb=memory_gb, pass_bytes=pass_bytes)


def budget_line(pass_bytes: list[int], memory_gb: float | None, device: torch.device) -> str:
    """One log line on an mNTK's memory: its passes, the most per-sample gradient bytes one pass
    held (counted), and the measured peak (CUDA: max allocated; CPU: the process's max RSS)."""
    import resource

    if device.type == "cuda":
        peak, what = torch.cuda.max_memory_allocated(device), "CUDA max allocated"
    else:  # Linux reports ru_maxrss in KiB
        peak, what = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process max RSS"
    budget = "null (one pass)" if memory_gb is None else f"{memory_gb:g} GB"
    return (
        f"mNTK: {len(pass_bytes)} pass(es) within ntk.memory_gb={budget}; per-sample gradients of one pass "
        f"at most {max(pass_bytes, default=0) / 1e9:.3f} GB; peak memory so far {peak / 1e9:.2f} GB ({what})"
    )


def head_ranks(model: torch.nn.Module, inputs: torch.Tensor, memory_gb: float | None = None) -> torch.Tensor | None:
    """Effective rank [layers, heads] of the attention matrices on `inputs`, or None for a model
    without attention probabilities; within `memory_gb` (`ntk.memory_gb`) by chunks of inputs."""
    if not hasattr(model, "attention_probs"):
        return None
    from mat.effective_rank import head_effective_rank

    return head_effective_rank(model, inputs, memory_gb)


def rank_budget_line(model: torch.nn.Module, inputs: torch.Tensor, memory_gb: float | None) -> str:
    """One log line on the effective ranks' memory: chunks of inputs within `ntk.memory_gb`."""
    from mat.effective_rank import probs_bytes_per_sample, samples_per_chunk

    n, chunk = int(inputs.shape[0]), samples_per_chunk(model, inputs, memory_gb)
    per_sample = probs_bytes_per_sample(model, int(inputs.shape[1])) if hasattr(model, "attention_layout") else 0
    budget = "null (one call)" if memory_gb is None else f"{memory_gb:g} GB"
    return (
        f"effective rank: {-(-n // chunk)} chunk(s) of at most {chunk} of {n} inputs within ntk.memory_gb={budget}; "
        f"attention matrices of one chunk {chunk * per_sample / 1e9:.3f} GB (counted)"
    )


def snip(
    model: torch.nn.Module,
    partition: Partition,
    loss_of: Callable[[], torch.Tensor],
) -> torch.Tensor:
    """SNIP's per-module connection sensitivity (Lee et al. 2018, applied per module as in the
    paper's Table 5): one forward/backward of the training loss on one minibatch at the current
    weights (`loss_of()` runs the forward), then sum |g * w| over each module's slices, normalised.

    Gradients are left cleared, so the measurement never leaks into a training step."""
    from mat.policies.snip import connection_sensitivity

    params = dict(model.named_parameters())
    for p in params.values():
        p.grad = None
    loss_of().backward()
    owned = set(partition.param_names)
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in params.items() if n in owned}
    scores = connection_sensitivity({n: params[n].detach() for n in owned}, grads, partition)
    for p in params.values():
        p.grad = None
    return scores.detach()


def mntk_rows(
    eigenvalues: Mapping[str, torch.Tensor],
    partition: Partition,
    top_k: int,
    ranks: torch.Tensor | None = None,
    report: Mapping[str, Mapping] | None = None,
) -> list[dict]:
    """One mntk.csv row per module (without epoch/step/partition, which the caller adds).

    `ranks[layer, index]` fills `effective_rank` for heads; `report[module name]` (the policy's
    view of that module, see `policy_report`) fills threshold / information / stopped when present."""
    rows = []
    for m in partition.modules:
        eig = eigenvalues[m.name].detach().double().cpu()
        row = {
            "module": m.name,
            "kind": m.kind,
            "layer": m.layer,
            "index": m.index,
            "lambda_max": float(eig[0]) if eig.numel() else math.nan,
            "lambda_min": float(eig[-1]) if eig.numel() else math.nan,
        }
        for i in range(min(top_k, eig.numel())):
            row[f"eig_{i}"] = float(eig[i])
        if ranks is not None and m.kind == "head" and m.layer < ranks.shape[0] and m.index < ranks.shape[1]:
            row["effective_rank"] = float(ranks[m.layer, m.index])
        view = (report or {}).get(m.name, {})
        if view.get("threshold") is not None:
            row["threshold"] = float(view["threshold"])
        for key in ("information", "stopped"):
            if view.get(key) is not None:
                row[key] = bool(view[key])
        rows.append(row)
    return rows


def evaluation_at(policy, epoch: int) -> int | None:
    """MAT's evaluation index t if the policy evaluated at `epoch` (its report's
    `evaluation_epochs`), else None; None for policies without an evaluation schedule."""
    epochs = mat_evaluations(policy)
    return epochs.index(epoch) if epochs is not None and epoch in epochs else None


def mat_evaluations(policy) -> list[int] | None:
    """The epochs of the policy's mNTK evaluations so far (MAT), or None for a method without them."""
    report = getattr(policy, "report", None)
    epochs = report().get("evaluation_epochs") if callable(report) else None
    return None if epochs is None else [int(e) for e in epochs]


def policy_report(policy) -> dict[str, dict]:
    """{module name: the policy's logging view of it} from `policy.report()` (a dict with a
    "modules" list of per-module dicts), or {} for a policy that reports nothing."""
    report = getattr(policy, "report", None)
    if not callable(report):
        return {}
    rows = report()
    rows = rows.get("modules", []) if isinstance(rows, dict) else rows
    return {row["module"]: row for row in rows or [] if "module" in row}
