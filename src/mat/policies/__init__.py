"""Training methods as policies (paper Sec. 3 and Appendix B): each step, a policy says which modules
are updated and with what step-size factor (`Decision`). The trainer asks `build_policy(...)` for
one and never looks at the method's name again.

    vanilla    vanilla.py    every module, every step
    rand       rand.py       a random fraction of each layer's modules, redrawn every epoch
    multirate  multirate.py  fixed fast/slow split; slow modules move every k-th step
    mat        mat.py        Algorithm 1: mNTK eigenvalues, Eq. 4-6, protecting strategy
    snip       snip.py       SNIP per module: prune the least sensitive modules at initialisation
    mat_prune  mat_prune.py  MAT plus pruning by lambda_max at a given epoch (Table 5)

Shared pieces: config.py (the `method:` block), common.py (generator, epochs, resumable state),
groups.py (per-layer random subsets, protecting strategy, pruning ranks).

Every policy also has `report() -> {"method", "epoch", "modules": [one dict per module], ...}` for
logging (`pandas.DataFrame(policy.report()["modules"])`); MAT adds its thresholds per kind.
"""

from __future__ import annotations

from typing import Any, Mapping

from mat.partition import Partition
from mat.policies.base import MEASUREMENTS, Decision, Policy
from mat.policies.config import METHODS, MethodConfig, parse_method_config
from mat.policies.mat import MATPolicy
from mat.policies.mat_prune import MATPrunePolicy
from mat.policies.multirate import MultiratePolicy
from mat.policies.rand import RandPolicy
from mat.policies.snip import SnipPolicy, connection_sensitivity
from mat.policies.vanilla import VanillaPolicy

__all__ = [
    "METHODS", "MEASUREMENTS", "Decision", "Policy", "MethodConfig", "parse_method_config",
    "validate_method_config", "build_policy",
    "connection_sensitivity", "VanillaPolicy", "RandPolicy", "MultiratePolicy", "MATPolicy", "SnipPolicy",
    "MATPrunePolicy",
]


def validate_method_config(cfg: Mapping[str, Any]) -> MethodConfig:
    """Check a `method:` block without building a policy (ValueError naming the key)."""
    return parse_method_config(cfg)


def build_policy(cfg: Mapping[str, Any], partition: Partition, seed: int, steps_per_epoch: int) -> Policy:
    """The policy a run's `method:` block describes (validated; see `config.py` for keys and defaults)."""
    c = parse_method_config(cfg)
    common = (partition, seed, steps_per_epoch)
    if c.name == "vanilla":
        return VanillaPolicy(*common)
    if c.name == "rand":
        return RandPolicy(*common, fraction=c.fraction, protect=c.protect)
    if c.name == "multirate":
        return MultiratePolicy(*common, fraction=c.fraction, k=c.k, variant=c.variant, protect=c.protect)
    mat_args = dict(alpha=c.alpha, beta=c.beta, start_epoch=c.start_epoch, interval=c.interval, protect=c.protect,
                    protect_stopped=c.protect_stopped)
    if c.name == "mat":
        return MATPolicy(*common, **mat_args)
    if c.name == "snip":
        return SnipPolicy(*common, prune_ratio=c.prune_ratio, protect=c.protect)
    return MATPrunePolicy(*common, **mat_args, prune_ratio=c.prune_ratio, prune_epoch=c.prune_epoch)
