"""Models (random initialisation, no download) and their module partitions.

Every model built here honours one contract, which the trainer, the mNTK and the figures rely on:
- `model(x) -> logits`: x LongTensor [B, T] of token ids for text models (logits [B, T, vocab]),
  float [B, 3, H, W] for image models (logits [B, classes]);
- `model.aux_loss()`: the auxiliary loss of the last forward as a scalar tensor (Switch: router
  load-balancing loss, unweighted; others zero);
- `model.layer_prefixes()`: parameter-name prefixes of the layers (layer-wise mNTK, Figures 2-3);
- `model.attention_probs(x)` (bert, switch): [layers, B, heads, T, T] in eval mode;
- `model.heads_removable` (bert): True when a head can leave the computation by dropping its q/k/v
  rows and output-projection columns (pruning, `removable_modules`).

A model is one file that ends with `register_model(arch, builder, label=..., inputs=...)`
(registry.py); this package imports every module in it, so `build_model` knows every file here.
"""

from __future__ import annotations

import importlib
import pkgutil

import torch

from mat.models.partitions import build_partition, removable_modules
from mat.models.registry import (
    Model,
    archs_taking,
    find_model,
    model_names,
    model_spec,
    register_model,
    unregister_model,
)

# Import every module of the package: a model file registers itself when imported.
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")


def build_model(cfg: dict) -> torch.nn.Module:
    """Build a randomly initialised model from a model config; `cfg["arch"]` a registered model.
    Seed torch beforehand for a reproducible initialisation."""
    if not isinstance(cfg, dict) or "arch" not in cfg:
        raise ValueError(f"model config: expected a mapping with key 'arch' (one of {sorted(model_names())}), got {cfg!r}")
    return model_spec(cfg["arch"]).build(cfg)


__all__ = [
    "Model", "build_model", "build_partition", "removable_modules", "register_model", "unregister_model",
    "model_names", "model_spec", "find_model", "archs_taking",
]
