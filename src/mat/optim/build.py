"""The `optim:` block of a run config: the optimizer and its learning-rate schedule.

    name: adamw | sgd            lr: peak learning rate (required)
    betas: [0.9, 0.999]  eps: 1.0e-8  (adamw)      momentum: 0.0  nesterov: false  (sgd)
    weight_decay: 0.0            schedule: linear | cosine | step | constant (default constant)
    warmup_steps: 0              milestones: [0.5, 0.75]  gamma: 0.1  (schedule: step only)

Defaults follow torch.optim, except AdamW's weight_decay (0.0 here, torch's 0.01) so that a config
that does not mention decay gets none. The paper's settings (Table 4, Appendix B.1): BERT Adam
[eps, beta1, beta2] = [1e-6, 0, 0], lr 2e-4, linear decay, no warm-up; Switch lr 1e-4, warm-up
12k steps then cosine, weight decay 0.01; VGG SGD lr 0.1, x0.1 at 1/2 and 3/4 of training.

The schedule is a factor on the peak lr per optimizer step (torch.optim.lr_scheduler.LambdaLR):
linear warm-up from 0 over `warmup_steps` (step s gets s / warmup_steps, as in the widely used
transformers schedules), then `linear` decays to 0 at `total_steps`, `cosine` follows half a cosine
to 0 at `total_steps`, `step` multiplies by gamma at each milestone (a fraction of total_steps),
`constant` stays at 1.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from mat.config_errors import bad_value
from mat.optim.adamw import AdamW
from mat.optim.masked import MaskedOptimizer
from mat.optim.sgd import SGD

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("linear", "cosine", "step", "constant")
_COMMON = ("name", "lr", "weight_decay", "schedule", "warmup_steps", "milestones", "gamma")
KEYS = {"adamw": _COMMON + ("betas", "eps"), "sgd": _COMMON + ("momentum", "nesterov")}
DEFAULTS = {
    "weight_decay": 0.0, "schedule": "constant", "warmup_steps": 0, "milestones": [0.5, 0.75], "gamma": 0.1,
    "betas": [0.9, 0.999], "eps": 1.0e-8, "momentum": 0.0, "nesterov": False,
}


def _fail(key: str, value: Any, expected: str) -> ValueError:
    return bad_value("optim", key, value, expected)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_optim_config(cfg: Mapping[str, Any] | None) -> dict:
    """Check an `optim:` block; return it with defaults filled. Errors name the key and the value."""
    if not isinstance(cfg, Mapping):
        raise ValueError(f"optim: expected a mapping with at least `name` and `lr`, got {cfg!r}")
    name = cfg.get("name")
    if name not in OPTIMIZERS:
        raise _fail("name", name, f"one of {OPTIMIZERS}")
    for key in cfg:
        if key not in KEYS[name]:
            raise ValueError(f"optim.{key}: not a key of optimizer {name!r}; its keys are {KEYS[name]}")
    out = {k: v for k, v in DEFAULTS.items() if k in KEYS[name]}
    out.update(cfg)
    if "lr" not in cfg:
        raise ValueError("optim.lr: missing; expected the peak learning rate, a number > 0")
    if not _is_number(out["lr"]) or out["lr"] <= 0:
        raise _fail("lr", out["lr"], "a number > 0")
    if not _is_number(out["weight_decay"]) or out["weight_decay"] < 0:
        raise _fail("weight_decay", out["weight_decay"], "a number >= 0")
    if name == "adamw":
        b = out["betas"]
        if not (isinstance(b, (list, tuple)) and len(b) == 2 and all(_is_number(x) and 0 <= x < 1 for x in b)):
            raise _fail("betas", b, "a list of two numbers in [0, 1), e.g. [0.9, 0.999]")
        if not _is_number(out["eps"]) or out["eps"] <= 0:
            raise _fail("eps", out["eps"], "a number > 0")
    else:
        if not _is_number(out["momentum"]) or not 0 <= out["momentum"] < 1:
            raise _fail("momentum", out["momentum"], "a number in [0, 1)")
        if not isinstance(out["nesterov"], bool):
            raise _fail("nesterov", out["nesterov"], "true or false")
        if out["nesterov"] and out["momentum"] == 0:
            raise _fail("nesterov", True, "false when momentum is 0 (Nesterov needs momentum)")
    if out["schedule"] not in SCHEDULES:
        raise _fail("schedule", out["schedule"], f"one of {SCHEDULES}")
    w = out["warmup_steps"]
    if isinstance(w, bool) or not isinstance(w, int) or w < 0:
        raise _fail("warmup_steps", w, "an integer >= 0")
    for key in ("milestones", "gamma"):
        if key in cfg and out["schedule"] != "step":
            raise ValueError(f"optim.{key}: applies only to schedule 'step', but schedule is {out['schedule']!r}")
    ms = out["milestones"]
    if not (isinstance(ms, (list, tuple)) and all(_is_number(x) and 0 < x < 1 for x in ms)
            and all(a < b for a, b in zip(ms, ms[1:]))):
        raise _fail("milestones", ms, "an increasing list of fractions of the total steps in (0, 1)")
    if not _is_number(out["gamma"]) or out["gamma"] <= 0:
        raise _fail("gamma", out["gamma"], "a number > 0")
    return out


def build_optimizer(cfg: Mapping[str, Any], named_params) -> MaskedOptimizer:
    """A masked AdamW or SGD over `named_params` (e.g. `model.named_parameters()`)."""
    c = validate_optim_config(cfg)
    if c["name"] == "adamw":
        return AdamW(named_params, lr=c["lr"], betas=tuple(c["betas"]), eps=c["eps"], weight_decay=c["weight_decay"])
    return SGD(named_params, lr=c["lr"], momentum=c["momentum"], weight_decay=c["weight_decay"], nesterov=c["nesterov"])


class LRFactor:
    """The schedule's factor on the peak lr at optimizer step s (a plain object, so LambdaLR's
    state_dict saves and restores it)."""

    def __init__(self, schedule: str, total_steps: int, warmup_steps: int, milestones, gamma: float) -> None:
        self.schedule = schedule
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.milestones = [float(m) for m in milestones]
        self.gamma = float(gamma)

    def __call__(self, step: int) -> float:
        w, total = self.warmup_steps, self.total_steps
        if step < w:
            return step / w
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "step":
            return self.gamma ** sum(1 for m in self.milestones if step >= m * total)
        progress = min(1.0, (step - w) / max(1, total - w))
        if self.schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine


def build_schedule(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer, total_steps: int):
    """LambdaLR with the configured warm-up and decay over `total_steps` optimizer steps."""
    c = validate_optim_config(cfg)
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"build_schedule: total_steps must be an integer >= 1, got {total_steps!r}")
    if c["warmup_steps"] >= total_steps and c["warmup_steps"] > 0:
        raise ValueError(f"optim.warmup_steps: got {c['warmup_steps']}; expected fewer than the {total_steps} total steps")
    factor = LRFactor(c["schedule"], total_steps, c["warmup_steps"], c["milestones"], c["gamma"])
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
