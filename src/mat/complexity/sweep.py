"""The sweep Table 6 measures: the profile's `complexity:` block over DEFAULTS, checked.

Three one-variable sweeps around a base point: S (samples), m (via the hidden size: m grows with
hidden^2 at fixed layers and heads) and L (via the heads per layer at fixed hidden: m stays the
same). Errors name the profile and the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

# Defaults sized for a 2-core laptop CPU (the whole sweep in well under a minute).
DEFAULTS = {
    "samples": [16, 32, 64, 128],  # S sweep
    "hidden": [32, 64, 128],  # m sweep (hidden size; heads fixed at base.heads)
    "heads": [1, 2, 4, 8, 16],  # L sweep (heads per layer; hidden fixed at base.hidden)
    "base": {"samples": 32, "hidden": 64, "heads": 8},
    "layers": 2,
    "seq_len": 16,
    "vocab_size": 128,
    "repeats": 5,
    "chunk_size": 16,
    "threads": 1,  # torch threads while timing (steadier numbers on a shared machine); 0: leave as is
    "seed": 0,
    "device": "cpu",  # cpu | cuda | auto (cuda when available)
    # GB of per-sample gradients one mNTK pass may hold, as a run's `ntk.memory_gb` (mat.ntk_budget);
    # unset: the profile's defaults.ntk.memory_gb, else the run schema's default
    "memory_gb": None,
}
RUN_SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "run.schema.yaml"


class SweepError(ValueError):
    """A `complexity:` block that cannot be measured (the message names profile and key)."""


@dataclass(frozen=True)
class Sweep:
    samples: tuple[int, ...]
    hidden: tuple[int, ...]
    heads: tuple[int, ...]
    base_samples: int
    base_hidden: int
    base_heads: int
    layers: int
    seq_len: int
    vocab_size: int
    repeats: int
    chunk_size: int
    threads: int
    seed: int
    device: str  # as written: cpu | cuda | auto (resolved when measuring)
    memory_gb: float | None

    def points(self) -> list[tuple[str, int, int, int]]:
        """(sweep variable, S, hidden, heads) of every measurement, base point in each sweep."""
        out = [("S", s, self.base_hidden, self.base_heads) for s in self.samples]
        out += [("m", self.base_samples, h, self.base_heads) for h in self.hidden]
        out += [("L", self.base_samples, self.base_hidden, n) for n in self.heads]
        return out

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _ints(where: str, value, minimum: int, single: bool = False):
    values = [value] if single else value
    if not isinstance(values, list) or not values or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values
    ):
        what = f"an integer >= {minimum}" if single else f"a non-empty list of integers >= {minimum}"
        raise SweepError(f"{where}: expected {what}, got {value!r}")
    return values[0] if single else tuple(sorted(set(values)))


def _memory_gb(where: str, profile: dict, value) -> float | None:
    """The mNTK memory budget: the block's, else the profile's defaults.ntk.memory_gb, else the schema's."""
    if value is None:
        ntk = (profile.get("defaults") or {}).get("ntk") or {}
        if "memory_gb" in ntk:
            value = ntk["memory_gb"]
        else:
            schema = yaml.safe_load(RUN_SCHEMA.read_text())
            value = schema["properties"]["ntk"]["properties"]["memory_gb"]["default"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise SweepError(f"{where}: expected a number > 0 or null, got {value!r}")
    return None if value is None else float(value)


def sweep_config(profile: dict) -> Sweep:
    """The profile's `complexity` block over DEFAULTS, checked (errors name the key)."""
    name = profile.get("profile", "?")
    given = profile.get("complexity") or {}
    if not isinstance(given, dict):
        raise SweepError(f"profile {name!r}, complexity: expected a mapping, got {given!r}")
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise SweepError(f"profile {name!r}, complexity: unknown keys {unknown}; expected some of {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **given, "base": {**DEFAULTS["base"], **(given.get("base") or {})}}
    unknown = sorted(set(cfg["base"]) - set(DEFAULTS["base"]))
    if unknown:
        raise SweepError(f"profile {name!r}, complexity.base: unknown keys {unknown}; expected some of {sorted(DEFAULTS['base'])}")
    w = f"profile {name!r}, complexity"
    if cfg["device"] not in ("cpu", "cuda", "auto"):
        raise SweepError(f"{w}.device: expected one of cpu, cuda, auto, got {cfg['device']!r}")
    sweep = Sweep(
        samples=_ints(f"{w}.samples", cfg["samples"], 2), hidden=_ints(f"{w}.hidden", cfg["hidden"], 1),
        heads=_ints(f"{w}.heads", cfg["heads"], 1),
        base_samples=_ints(f"{w}.base.samples", cfg["base"]["samples"], 2, True),
        base_hidden=_ints(f"{w}.base.hidden", cfg["base"]["hidden"], 1, True),
        base_heads=_ints(f"{w}.base.heads", cfg["base"]["heads"], 1, True),
        layers=_ints(f"{w}.layers", cfg["layers"], 1, True), seq_len=_ints(f"{w}.seq_len", cfg["seq_len"], 1, True),
        vocab_size=_ints(f"{w}.vocab_size", cfg["vocab_size"], 2, True), repeats=_ints(f"{w}.repeats", cfg["repeats"], 1, True),
        chunk_size=_ints(f"{w}.chunk_size", cfg["chunk_size"], 1, True), threads=_ints(f"{w}.threads", cfg["threads"], 0, True),
        seed=_ints(f"{w}.seed", cfg["seed"], 0, True), device=cfg["device"],
        memory_gb=_memory_gb(f"{w}.memory_gb", profile, cfg["memory_gb"]),
    )
    for _, _, hidden, heads in sweep.points():
        if hidden % heads:
            raise SweepError(f"{w}: hidden {hidden} is not divisible by heads {heads} (BERT splits hidden into heads)")
    for var, n in (("samples", sweep.samples), ("hidden", sweep.hidden), ("heads", sweep.heads)):
        if len(n) < 2:
            raise SweepError(f"{w}.{var}: expected at least 2 distinct values to fit an exponent, got {list(n)}")
    return sweep
