"""The `method:` block of a run config: each method's config is a small frozen dataclass, defined in
the method's file and registered with it (`registry.py`); this file holds what they share.

A config field is declared with its default and its check, which also normalises the value:

    fraction: float = number(0.5, lo=0.0, hi=1.0, lo_open=True)   # in (0, 1]
    k: int = integer(5, lo=1)

Building a config (from a `method:` block with `parse_method_config`, or directly in code) checks
every field, so an invalid config cannot exist. Each method accepts only its own fields, so a key
meant for another method is reported instead of silently ignored. Errors name the key, the value and
what is allowed (`method.k: got 0; expected an integer >= 1`). Defaults are the paper's
(Appendix B.1): `{name: vanilla}` or `{name: mat}` is a complete block.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping

from mat.config_errors import bad_value
from mat.partition import KINDS
from mat.policies.registry import method_names, method_spec

__all__ = [
    "MethodConfig", "Protecting", "flag", "number", "integer", "choice", "per_kind", "parse_method_config",
]


def _fail(key: str, value: Any, expected: str) -> ValueError:
    return bad_value("method", key, value, expected)


# ------------------------------------------------------------------------------ field checks
def _check_number(key: str, value: Any, lo: float, hi: float, lo_open: bool, hi_open: bool) -> float:
    lo_s, hi_s = ("(" if lo_open else "["), (")" if hi_open else "]")
    expected = f"a number in {lo_s}{lo:g}, {hi:g}{hi_s}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, value, expected)
    v = float(value)
    if v != v or (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi):
        raise _fail(key, value, expected)
    return v


def flag(default: bool) -> Any:
    """A true/false field."""

    def check(key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _fail(key, value, "true or false")
        return value

    return field(default=default, metadata={"check": check})


def number(default: float, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Any:
    """A real number in [lo, hi] (either end open); integers are taken as floats."""
    return field(default=default, metadata={"check": lambda key, v: _check_number(key, v, lo, hi, lo_open, hi_open)})


def integer(default: int, lo: int) -> Any:
    """An integer >= lo (not a bool, not a float)."""

    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise _fail(key, value, f"an integer >= {lo}")
        return int(value)

    return field(default=default, metadata={"check": check})


def choice(default: str, options: tuple[str, ...]) -> Any:
    """One of `options`."""

    def check(key: str, value: Any) -> str:
        if value not in options:
            raise _fail(key, value, f"one of {options}")
        return value

    return field(default=default, metadata={"check": check})


def per_kind(default: Mapping[str, float], hi: float, lo_open: bool = True, hi_open: bool = True) -> Any:
    """A number per module kind, in (0, hi): a scalar (every kind) or a mapping kind -> number, where
    kinds not named keep `default`'s value. Normalised to a full {kind: float} dict."""
    default = dict(default)

    def check(key: str, value: Any) -> dict:
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(KINDS))
            if unknown:
                raise ValueError(f"method.{key}: unknown module kind {unknown[0]!r}; expected kinds from {KINDS}")
            out = dict(default)
            for kind, v in value.items():
                out[kind] = _check_number(f"{key}.{kind}", v, 0.0, hi, lo_open, hi_open)
            return out
        v = _check_number(key, value, 0.0, hi, lo_open, hi_open)
        return {kind: v for kind in KINDS}

    return field(default_factory=lambda: dict(default), metadata={"check": check})


# ------------------------------------------------------------------------------ configs
@dataclass(frozen=True)
class MethodConfig:
    """Base of every method's config. `name` is set by `register_method`; every field carries its
    check (`flag`, `number`, `integer`, `choice`, `per_kind`), run when the config is built."""

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            check = f.metadata.get("check")
            if check is None:
                raise TypeError(f"{type(self).__name__}.{f.name}: declare it with flag/number/integer/choice/per_kind")
            object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys a `method:` block of this method may hold, besides `name`."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def parse(cls, block: Mapping[str, Any]) -> "MethodConfig":
        """This method's config from its `method:` block (`name` plus any of `keys()`)."""
        allowed = cls.keys()
        for key in block:
            if key != "name" and key not in allowed:
                raise ValueError(f"method.{key}: not a key of method {cls.name!r}; its keys are {('name', *allowed)}")
        return cls(**{k: v for k, v in block.items() if k != "name"})

    def policy_args(self) -> dict[str, Any]:
        """Keyword arguments of the policy class: every field, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Protecting(MethodConfig):
    """The protecting strategy: keep >= 1 module per layer updated (Appendix B.1); on for every method."""

    protect: bool = flag(True)


def parse_method_config(cfg: Mapping[str, Any] | None) -> MethodConfig:
    """Validate a `method:` block into its method's config; errors name the key, the value and what
    is allowed, and an unknown method name lists the registered ones."""
    if not isinstance(cfg, Mapping):
        raise ValueError(f"method: expected a mapping with at least `name`, got {cfg!r}")
    if "name" not in cfg:
        raise ValueError(f"method.name: missing; expected one of {method_names()}")
    return method_spec(cfg["name"]).config.parse(cfg)
