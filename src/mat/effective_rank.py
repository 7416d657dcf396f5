"""Effective rank (Roy & Vetterli 2007) of attention matrices, for the head analysis of Figure 1(a).

erank(A) = exp(H(p)), where p_i = sigma_i / sum_j sigma_j are the normalised singular values of A
and H(p) = -sum_i p_i log p_i is their Shannon entropy (0 log 0 = 0). It lies between 1 (rank one)
and the rank of A (all non-zero singular values equal), and is a smooth measure of how many
directions an attention matrix really uses.
"""

from __future__ import annotations

import torch


def effective_rank(matrices: torch.Tensor) -> torch.Tensor:
    """Effective rank of each matrix in a batch [..., M, N] -> [...] (float64).

    Singular values are computed in float64. A zero matrix has effective rank 0 (its rank).
    """
    if matrices.dim() < 2:
        raise ValueError(f"effective_rank: expected matrices [..., M, N], got shape {tuple(matrices.shape)}")
    sigma = torch.linalg.svdvals(matrices.double())
    total = sigma.sum(-1, keepdim=True)
    p = sigma / total.clamp_min(torch.finfo(torch.float64).tiny)
    entropy = -torch.special.xlogy(p, p).sum(-1)  # xlogy(0, 0) = 0
    return torch.where(total.squeeze(-1) > 0, entropy.exp(), torch.zeros_like(entropy))


def head_effective_rank(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Effective rank of every head's attention matrix [layers, heads], averaged over the batch `x`
    (`model.attention_probs(x)`: eval mode, [layers, B, heads, T, T])."""
    if not hasattr(model, "attention_probs"):
        raise ValueError(f"head_effective_rank: a {type(model).__name__} has no attention_probs(x)")
    return effective_rank(model.attention_probs(x)).mean(1)
