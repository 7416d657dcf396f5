"""The registry of training methods: one entry per method, made by the method's own file.

A method file defines its config (a frozen dataclass of `config.MethodConfig`, see there) and its
policy class, and registers both with the names a reader sees:

    @register_method("multirate", config=MultirateConfig, label="Multirate")
    class MultiratePolicy(PolicyBase): ...

`build_policy` (mat.policies) builds `policy(partition, seed, steps_per_epoch, **config fields)`;
`mat.train.run_config` and `mat.profiles.check_runs` validate `method:` blocks through it, and the
report's labels are a generated snapshot of it (`mat/schemas/labels.yaml`, kept current by a test),
so nothing else lists the methods. `mat.policies` imports every module of its package,
so a new file there is registered without being named anywhere else.

This module imports nothing (config.py imports it): it holds the entries; the classes live in the
method files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Method", "register_method", "unregister_method", "method_spec", "find_method", "method_names"]


@dataclass(frozen=True)
class Method:
    name: str  # the `method.name` of a run config and a profile
    policy: type  # built as policy(partition, seed, steps_per_epoch, **config fields)
    config: type  # a frozen dataclass subclassing mat.policies.config.MethodConfig
    # The paper's row label (Tables 1-3); "{model}" stands for the architecture's label
    # (mat.models registry), e.g. "{model}-Rand" -> "BERT-Rand".
    label: str
    # Table 5's row label, when it differs from `label`: a template over the method's config keys,
    # where `{KEY_percent}` is a number key as a percentage ("SNIP ({prune_ratio_percent})" ->
    # "SNIP (50%)"). The report formats it (mat.report.labels).
    pruning_label: str | None = None


_METHODS: dict[str, Method] = {}


def register_method(name: str, *, config: type, label: str, pruning_label: str | None = None) -> Callable[[type], type]:
    """Class decorator: register the policy class under `name` with its config class and labels.
    Sets `policy.method` and `config.name` to `name`; a name or a config class registered twice
    for different methods is an error."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register_method: name must be an identifier, got {name!r}")
    if not (isinstance(config, type) and callable(getattr(config, "parse", None))):
        raise TypeError(f"register_method({name!r}): config must subclass policies.config.MethodConfig, got {config!r}")
    owner = config.__dict__.get("name")
    if owner not in (None, name):
        raise ValueError(f"register_method({name!r}): config {config.__name__} already belongs to method {owner!r}")

    def register(policy: type) -> type:
        old = _METHODS.get(name)
        if old is not None and old.policy.__qualname__ != policy.__qualname__:
            raise ValueError(f"method {name!r} is already registered (policy {old.policy.__qualname__})")
        policy.method = name
        config.name = name
        _METHODS[name] = Method(name, policy, config, label, pruning_label)
        return policy

    return register


def unregister_method(name: str) -> None:
    """Remove a method (tests that register a toy method clean up with this)."""
    _METHODS.pop(name, None)


def method_names() -> tuple[str, ...]:
    """Every registered method, in registration order."""
    return tuple(_METHODS)


def find_method(name: Any) -> Method | None:
    return _METHODS.get(name) if isinstance(name, str) else None


def method_spec(name: Any) -> Method:
    """The registered method `name`; an unknown name is an error naming the known ones."""
    spec = find_method(name)
    if spec is None:
        raise ValueError(f"method.name: got {name!r}; expected one of {method_names()}")
    return spec
