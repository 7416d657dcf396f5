"""Optimizers that honour a policy's per-module decision, bit for bit ("frozen means frozen").

    masked.py  the mask format, `decision_masks` (Decision -> per-parameter masks), the base class
    adamw.py   AdamW with per-element step counts
    sgd.py     SGD with momentum / Nesterov / L2 weight decay
    build.py   the `optim:` config block: `build_optimizer`, `build_schedule` (LambdaLR)

Per step the trainer does `optimizer.step(decision_masks(policy.decide(step), partition, params))`.
"""

from mat.optim.adamw import AdamW
from mat.optim.build import LRFactor, build_optimizer, build_schedule, validate_optim_config
from mat.optim.masked import Mask, MaskedOptimizer, decision_masks
from mat.optim.sgd import SGD

__all__ = [
    "AdamW", "SGD", "Mask", "MaskedOptimizer", "decision_masks", "build_optimizer", "build_schedule",
    "validate_optim_config", "LRFactor",
]
