"""Training methods as policies (paper Sec. 3 and Appendix B): each step, a policy says which modules
are updated and with what step-size factor (`Decision`). The trainer asks `build_policy(...)` for
one and never looks at the method's name again.

    vanilla    vanilla.py    every module, every step
    rand       rand.py       a random fraction of each layer's modules, redrawn every epoch
    multirate  multirate.py  fixed fast/slow split; slow modules move every k-th step
    mat        mat.py        Algorithm 1: mNTK eigenvalues, Eq. 4-6, protecting strategy
    snip       snip.py       SNIP per module: prune the least sensitive modules at initialisation
    mat_prune  mat_prune.py  MAT plus pruning by lambda_max at a given epoch (Table 5)

A method is one file: its config dataclass and its policy class, registered together with the
method's labels (`@register_method`, registry.py). This package imports every module in it, so a
new method file needs no line anywhere else (the profiles that run it aside).

Shared pieces: config.py (config fields and their checks), common.py (generator, epochs, resumable
state), groups.py (per-layer random subsets, protecting strategy, pruning ranks), base.py (the
`Policy` protocol the trainer talks to).

Every policy also has `report() -> {"method", "epoch", "modules": [one dict per module], ...}` for
logging (`pandas.DataFrame(policy.report()["modules"])`); MAT adds its thresholds per kind.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Mapping

from mat.partition import Partition
from mat.policies.base import Decision, Policy
from mat.policies.config import MethodConfig, parse_method_config
from mat.policies.registry import Method, find_method, method_names, method_spec, register_method, unregister_method

# Import every module of the package: a method file registers itself when imported.
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

from mat.policies.snip import connection_sensitivity  # noqa: E402  (the trainer's SNIP measurement)

__all__ = [
    "Decision", "Policy", "Method", "MethodConfig", "parse_method_config", "validate_method_config",
    "build_policy", "register_method", "unregister_method", "method_names", "method_spec", "find_method",
    "connection_sensitivity",
]


def validate_method_config(cfg: Mapping[str, Any]) -> MethodConfig:
    """Check a `method:` block without building a policy (ValueError naming the key)."""
    return parse_method_config(cfg)


def build_policy(cfg: Mapping[str, Any], partition: Partition, seed: int, steps_per_epoch: int) -> Policy:
    """The policy a run's `method:` block describes: the registered method `cfg["name"]`, built
    from its validated config (an unknown name is an error naming the registered ones)."""
    config = parse_method_config(cfg)
    return method_spec(cfg["name"]).policy(partition, seed, steps_per_epoch, **config.policy_args())
