"""The `method:` block of a run config, validated into a `MethodConfig`.

Defaults are the paper's (Appendix B.1), so `{name: vanilla}` or `{name: mat}` is a complete config:
BERT-style MAT starts at the 5th epoch (0-based epoch 4) and re-evaluates every 8 epochs; mat_prune
prunes at the 15th (epoch 14); alpha is 0.1 for heads and layers, 0.2 for experts and filters; beta
is 1e-3, except 1e-6 for filters (VGG). The protecting strategy is on for every method. Each method
accepts only the keys it reads, so a key meant for another method is reported instead of silently
ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from mat.config_errors import bad_value
from mat.partition import KINDS

METHODS = ("vanilla", "rand", "multirate", "mat", "snip", "mat_prune")
VARIANTS = ("paper", "drift")

DEFAULT_ALPHA = {"head": 0.1, "expert": 0.2, "filter": 0.2, "layer": 0.1}  # Eq. 4, Appendix B.1
DEFAULT_BETA = {"head": 1.0e-3, "expert": 1.0e-3, "filter": 1.0e-6, "layer": 1.0e-3}  # Eq. 6

_MAT_KEYS = ("alpha", "beta", "start_epoch", "interval", "protect_stopped")
KEYS = {  # the keys each method reads, besides `name`
    "vanilla": ("protect",),
    "rand": ("protect", "fraction"),
    "multirate": ("protect", "fraction", "k", "variant"),
    "mat": ("protect", *_MAT_KEYS),
    "snip": ("protect", "prune_ratio"),
    "mat_prune": ("protect", *_MAT_KEYS, "prune_ratio", "prune_epoch"),
}


@dataclass(frozen=True)
class MethodConfig:
    name: str
    protect: bool = True  # protecting strategy: keep >= 1 module per layer updated (Appendix B.1)
    fraction: float = 0.5  # rand: fraction updated each epoch; multirate: fraction of fast modules
    k: int = 5  # multirate: slow modules move every k-th step
    variant: str = "paper"  # multirate: "paper" (as MAT describes it) or "drift" (authors' optimizer)
    alpha: dict = field(default_factory=lambda: dict(DEFAULT_ALPHA))  # per kind, Eq. 4
    beta: dict = field(default_factory=lambda: dict(DEFAULT_BETA))  # per kind, Eq. 6
    # mat: the protecting strategy may keep a module Eq. 6 stopped, so no layer empties (ours: the
    # paper's "at least one ... in each layer"); false: only modules not stopped (the other reading)
    protect_stopped: bool = True
    # 0-based epochs: "starts from the 5th epoch and performs every 8 epochs" (B.1) is epoch 4, 12, ...
    # (the 1-based-index reading, start_epoch: 5, is one setting away)
    start_epoch: int = 4  # first mNTK evaluation = end of warm-up
    interval: int = 8  # epochs between mNTK evaluations
    prune_ratio: float = 0.5  # snip / mat_prune: fraction of each kind removed from the forward pass
    prune_epoch: int = 14  # mat_prune: "at the 15th epoch" (B.2), 0-based; its mNTK ranks the modules


def _fail(key: str, value: Any, expected: str) -> ValueError:
    return bad_value("method", key, value, expected)


def _number(key: str, value: Any, lo: float, hi: float, lo_open: bool, hi_open: bool) -> float:
    lo_s, hi_s = ("(" if lo_open else "["), (")" if hi_open else "]")
    expected = f"a number in {lo_s}{lo:g}, {hi:g}{hi_s}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, value, expected)
    v = float(value)
    if v != v or (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi):
        raise _fail(key, value, expected)
    return v


def _integer(key: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise _fail(key, value, f"an integer >= {lo}")
    return int(value)


def _per_kind(key: str, value: Any, default: Mapping[str, float], lo_open: bool, hi: float, hi_open: bool) -> dict:
    """A scalar (every kind) or a mapping kind -> number; kinds not named keep the paper's default."""
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"method.{key}: unknown module kind {unknown[0]!r}; expected kinds from {KINDS}")
        out = dict(default)
        for kind, v in value.items():
            out[kind] = _number(f"{key}.{kind}", v, 0.0, hi, lo_open, hi_open)
        return out
    v = _number(key, value, 0.0, hi, lo_open, hi_open)
    return {kind: v for kind in KINDS}


def parse_method_config(cfg: Mapping[str, Any] | None) -> MethodConfig:
    """Validate a `method:` block; errors name the key, the value and what is allowed."""
    if not isinstance(cfg, Mapping):
        raise ValueError(f"method: expected a mapping with at least `name`, got {cfg!r}")
    if "name" not in cfg:
        raise ValueError(f"method.name: missing; expected one of {METHODS}")
    name = cfg["name"]
    if name not in METHODS:
        raise ValueError(f"method.name: got {name!r}; expected one of {METHODS}")
    allowed = KEYS[name]
    for key in cfg:
        if key != "name" and key not in allowed:
            raise ValueError(f"method.{key}: not a key of method {name!r}; its keys are {('name', *allowed)}")

    out: dict[str, Any] = {"name": name}
    for key in ("protect", "protect_stopped"):
        if key in cfg:
            if not isinstance(cfg[key], bool):
                raise _fail(key, cfg[key], "true or false")
            out[key] = cfg[key]
    if "fraction" in cfg:
        out["fraction"] = _number("fraction", cfg["fraction"], 0.0, 1.0, lo_open=True, hi_open=False)
    if "k" in cfg:
        out["k"] = _integer("k", cfg["k"], 1)
    if "variant" in cfg:
        if cfg["variant"] not in VARIANTS:
            raise _fail("variant", cfg["variant"], f"one of {VARIANTS}")
        out["variant"] = cfg["variant"]
    if "alpha" in cfg:
        out["alpha"] = _per_kind("alpha", cfg["alpha"], DEFAULT_ALPHA, lo_open=True, hi=1.0, hi_open=True)
    if "beta" in cfg:
        out["beta"] = _per_kind("beta", cfg["beta"], DEFAULT_BETA, lo_open=True, hi=float("inf"), hi_open=True)
    if "start_epoch" in cfg:
        out["start_epoch"] = _integer("start_epoch", cfg["start_epoch"], 0)
    if "interval" in cfg:
        out["interval"] = _integer("interval", cfg["interval"], 1)
    if "prune_ratio" in cfg:
        out["prune_ratio"] = _number("prune_ratio", cfg["prune_ratio"], 0.0, 1.0, lo_open=True, hi_open=True)
    if "prune_epoch" in cfg:
        out["prune_epoch"] = _integer("prune_epoch", cfg["prune_epoch"], 0)
    return MethodConfig(**out)
