"""Masked-language-model corruption (BERT, Devlin et al. 2018; the paper's Appendix B.1).

Each non-special token is selected with probability `prob` (15%); a selected token becomes [MASK]
with probability 0.8, a random non-special token with 0.1, and stays unchanged with 0.1. Labels are
the original ids at selected positions and -100 (ignored by cross-entropy) elsewhere. Special
tokens ([PAD] [UNK] [CLS] [SEP] [MASK]) are never selected.

Randomness comes only from the `generator` passed in, drawn on the generator's device in a fixed
order (selection uniforms, then replacement uniforms, then random-token indices, each of the
batch's shape) and then moved to the batch's device. So a CPU generator with a given seed gives
the same masks for a batch on CPU or on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class MaskSpec:
    """The token ids masking needs; `TextData.mask_spec` builds one."""

    mask_id: int
    vocab_size: int
    special_ids: tuple[int, ...]


def mask_tokens(input_ids: torch.Tensor, spec, generator: torch.Generator,
                prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """(corrupted inputs, labels) for a batch of ids of any shape on any device.

    spec: a `MaskSpec`, or anything with a `mask_spec` property (e.g. `TextData`).
    """
    spec = getattr(spec, "mask_spec", spec)
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must lie in [0, 1], got {prob}")
    device = input_ids.device
    special = torch.tensor(sorted(set(spec.special_ids)), dtype=input_ids.dtype, device=device)
    ordinary = torch.ones(spec.vocab_size, dtype=torch.bool)
    ordinary[special.cpu()] = False
    pool = ordinary.nonzero().squeeze(1)  # tokens a random replacement may draw
    if pool.numel() == 0:
        raise ValueError("the vocabulary has no non-special tokens to draw replacements from")

    gdev = generator.device
    select_u = torch.rand(input_ids.shape, generator=generator, device=gdev).to(device)
    replace_u = torch.rand(input_ids.shape, generator=generator, device=gdev).to(device)
    random_idx = torch.randint(pool.numel(), input_ids.shape, generator=generator, device=gdev).to(device)

    selected = (select_u < prob) & ~torch.isin(input_ids, special)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    to_mask = selected & (replace_u < 0.8)
    to_random = selected & (replace_u >= 0.8) & (replace_u < 0.9)
    inputs = torch.where(to_mask, torch.full_like(input_ids, spec.mask_id), input_ids)
    inputs = torch.where(to_random, pool.to(device, input_ids.dtype)[random_idx], inputs)
    return inputs, labels
