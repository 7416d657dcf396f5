"""Masked optimizer steps: "frozen means frozen".

A policy's `Decision` says, per module, whether it is updated (`active`), with what step-size
factor (`lr_scale`) and whether its optimizer state takes in this step's gradient (`use_grad`;
only Multirate's drift variant moves a module without a new gradient). `decision_masks` spreads
those per-module values over the elements of every owned parameter with `Partition.expand`:

    masks[name] = (active_bool, lr_scale, use_grad_bool)   # each broadcastable to the parameter

`MaskedOptimizer.step(masks)` then updates exactly the active elements. Every new value (parameter,
moments, momentum buffer, step count) is computed for the whole tensor and merged with
`torch.where(mask, new, old)`, so an element that is not updated keeps its exact bits -- weight
decay included -- and a later step resumes from the state it had. Parameters without an entry in
`masks` are updated fully with scale 1, as are all parameters when `masks` is None.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, NamedTuple

import torch

from mat.partition import Partition
from mat.policies.base import Decision


class Mask(NamedTuple):
    active: torch.Tensor  # bool: the element (and its optimizer state) may change
    lr_scale: torch.Tensor  # float: factor on the learning rate
    use_grad: torch.Tensor  # bool: the optimizer state absorbs this step's gradient


def decision_masks(
    decision: Decision, partition: Partition, named_params: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]
) -> dict[str, Mask]:
    """Per-parameter masks for `MaskedOptimizer.step` from one step's `Decision`.

    Pruned modules are never active. Elements no module owns are fully updated (fill True / 1.0).
    The masks have broadcastable shapes (e.g. [rows, 1]); they are not materialised at full size."""
    params = dict(named_params)
    missing = [p for p in partition.param_names if p not in params]
    if missing:
        raise KeyError(f"decision_masks: the partition names parameter {missing[0]!r}, which named_params lacks")
    n = len(partition)
    for label, t in (("active", decision.active), ("lr_scale", decision.lr_scale),
                     ("use_grad", decision.use_grad), ("pruned", decision.pruned)):
        if t is not None and tuple(t.shape) != (n,):
            raise ValueError(f"decision_masks: Decision.{label} has shape {tuple(t.shape)}, expected ({n},)")
    if not params:
        return {}
    device = next(iter(params.values())).device
    active = decision.active.to(device=device, dtype=torch.bool)
    if decision.pruned is not None:
        active = active & ~decision.pruned.to(device=device, dtype=torch.bool)
    use_grad = active if decision.use_grad is None else decision.use_grad.to(device=device, dtype=torch.bool)
    scale = decision.lr_scale.to(device=device, dtype=torch.float32)
    a = partition.expand(active, params, fill=True)
    s = partition.expand(scale, params, fill=1.0)
    u = partition.expand(use_grad, params, fill=True)
    return {name: Mask(a[name], s[name], u[name]) for name in a}


def _named_groups(named_params: Any) -> list[dict]:
    """Accept a dict name -> tensor, an iterable of (name, tensor), or param-group dicts whose
    "params" hold (name, tensor) pairs; names are required, since masks are keyed by name."""
    if isinstance(named_params, Mapping):
        named_params = list(named_params.items())
    items = list(named_params)
    if not items:
        raise ValueError("optimizer: no parameters given")
    groups = items if isinstance(items[0], dict) else [{"params": items}]
    out = []
    for g in groups:
        if not isinstance(g, dict):
            raise TypeError("optimizer: mix of parameter groups and parameters; give one or the other")
        params = g["params"]
        params = list(params.items()) if isinstance(params, Mapping) else list(params)
        for p in params:
            if not (isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], torch.Tensor)):
                raise TypeError(
                    "optimizer: parameters must be named, e.g. model.named_parameters(), because the "
                    f"masks are keyed by name; got {type(p).__name__}"
                )
        out.append({**g, "params": params})
    return out


class MaskedOptimizer(torch.optim.Optimizer):
    """Base for the masked optimizers: named parameters, mask checking, one `_update` per tensor."""

    def __init__(self, named_params: Any, defaults: dict) -> None:
        super().__init__(_named_groups(named_params), defaults)
        names = [n for g in self.param_groups for n in g["param_names"]]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"optimizer: parameter names appear twice: {dup}")
        self._known = set(names)

    @torch.no_grad()
    def step(self, masks: Mapping[str, Mask | tuple] | None = None, closure=None):
        """One update; `masks[name] = (active, lr_scale, use_grad)` restricts it (see module doc)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        masks = masks or {}
        unknown = sorted(set(masks) - self._known)
        if unknown:
            raise KeyError(f"optimizer.step: masks name parameter {unknown[0]!r}, which this optimizer does not hold")
        for group in self.param_groups:
            for name, p in zip(group["param_names"], group["params"]):
                mask = _check_mask(name, masks[name], p) if name in masks else None
                grad = p.grad
                if grad is None:
                    if mask is None or not bool((mask.active & ~mask.use_grad).any()):
                        continue  # nothing to do without a gradient (as torch.optim)
                    grad = torch.zeros_like(p)  # drift-only movement: the gradient is not read
                if grad.is_sparse:
                    raise RuntimeError(f"optimizer: sparse gradient for {name!r} is not supported")
                self._update(p, grad, self.state[p], group, mask)
        return loss

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict, mask: Mask | None) -> None:
        raise NotImplementedError


def _check_mask(name: str, mask: Any, p: torch.Tensor) -> Mask:
    if not (isinstance(mask, tuple) and len(mask) == 3):
        raise ValueError(f"optimizer.step: masks[{name!r}] must be (active, lr_scale, use_grad), got {type(mask).__name__}")
    out = []
    for label, t, dtype in zip(Mask._fields, mask, (torch.bool, None, torch.bool)):
        t = torch.as_tensor(t, device=p.device)
        if dtype is torch.bool and t.dtype != torch.bool:
            raise ValueError(f"optimizer.step: masks[{name!r}].{label} must be bool, got {t.dtype}")
        if dtype is None and not t.is_floating_point():
            t = t.to(torch.float32)
        try:
            shape = torch.broadcast_shapes(t.shape, p.shape)
        except RuntimeError:
            shape = None
        if shape != p.shape:
            raise ValueError(
                f"optimizer.step: masks[{name!r}].{label} of shape {tuple(t.shape)} does not broadcast "
                f"to the parameter's shape {tuple(p.shape)}"
            )
        out.append(t)
    return Mask(*out)
