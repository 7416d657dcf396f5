"""Models (random initialisation, no download) and their module partitions.

Every model built here honours one contract, which the trainer, the mNTK and the figures rely on:
- `model(x) -> logits`: x LongTensor [B, T] of token ids for bert/switch (logits [B, T, vocab]),
  float [B, 3, H, W] for vgg16 (logits [B, classes]);
- `model.aux_loss()`: the auxiliary loss of the last forward as a scalar tensor (Switch: router
  load-balancing loss, unweighted; others zero);
- `model.layer_prefixes()`: parameter-name prefixes of the layers (layer-wise mNTK, Figures 2-3);
- `model.attention_probs(x)` (bert, switch): [layers, B, heads, T, T] in eval mode;
- `model.heads_removable` (bert): True when a head can leave the computation by dropping its q/k/v
  rows and output-projection columns (pruning, `removable_modules`).
"""

from __future__ import annotations

import torch

from mat.models.bert import build_bert
from mat.models.partitions import build_partition, removable_modules
from mat.models.switch import build_switch
from mat.models.vgg import build_vgg16

ARCHS = {"bert": build_bert, "switch": build_switch, "vgg16": build_vgg16}


def build_model(cfg: dict) -> torch.nn.Module:
    """Build a randomly initialised model from a model config; `cfg["arch"]` in ARCHS. Seed torch
    beforehand for a reproducible initialisation."""
    if not isinstance(cfg, dict) or "arch" not in cfg:
        raise ValueError(f"model config: expected a mapping with key 'arch' (one of {sorted(ARCHS)}), got {cfg!r}")
    if cfg["arch"] not in ARCHS:
        raise ValueError(f"model config: arch {cfg['arch']!r} unknown; expected one of {sorted(ARCHS)}")
    return ARCHS[cfg["arch"]](cfg)


__all__ = ["ARCHS", "build_model", "build_partition", "removable_modules"]
