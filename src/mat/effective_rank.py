"""Effective rank (Roy & Vetterli 2007) of attention matrices, for the head analysis of Figure 1(a).

erank(A) = exp(H(p)), where p_i = sigma_i / sum_j sigma_j are the normalised singular values of A
and H(p) = -sum_i p_i log p_i is their Shannon entropy (0 log 0 = 0). It lies between 1 (rank one)
and the rank of A (all non-zero singular values equal), and is a smooth measure of how many
directions an attention matrix really uses.
"""

from __future__ import annotations

import torch

from mat.ntk_budget import budget_bytes


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


# Bytes per attention-matrix entry while ranking: the float32 probabilities, their float64 copy,
# the copy LAPACK's SVD works on (batched svdvals factorises one matrix at a time), and 4 for what
# else the forward holds per entry while forming them (scores before the softmax): at 20 bytes the
# measured growth was up to 25% over the count (benchmarks/results/rank_memory.csv, BERT-base).
BYTES_PER_ENTRY = 4 + 8 + 8 + 4


def probs_bytes_per_sample(model: torch.nn.Module, seq_len: int) -> int:
    """Bytes one input of length `seq_len` costs `head_effective_rank`: every head's T x T attention
    matrix at BYTES_PER_ENTRY (`model.attention_layout()`'s heads per layer)."""
    heads = sum(int(layer["heads"]) for layer in model.attention_layout())
    return heads * seq_len * seq_len * BYTES_PER_ENTRY


def samples_per_chunk(model: torch.nn.Module, x: torch.Tensor, memory_gb: float | None) -> int:
    """How many of the inputs `x` [S, T] one call of `model.attention_probs` may take within
    `memory_gb` (`ntk.memory_gb`): all S when there is no budget or they fit, else as many as fit,
    at least one."""
    n = int(x.shape[0])
    if memory_gb is None or not hasattr(model, "attention_layout"):
        return n
    per_sample = probs_bytes_per_sample(model, int(x.shape[1]))
    return max(1, min(n, budget_bytes(memory_gb) // per_sample))


def head_effective_rank(model: torch.nn.Module, x: torch.Tensor, memory_gb: float | None = None) -> torch.Tensor:
    """Effective rank of every head's attention matrix [layers, heads], averaged over the batch `x`
    (`model.attention_probs(x)`: eval mode, [layers, B, heads, T, T]).

    The attention matrices of all S inputs at once grow as S x layers x heads x T^2 (about 30 GB
    for the paper's BERT-base at S = 64, T = 512), so with a budget `memory_gb` the inputs go
    through in chunks that fit it (`samples_per_chunk`) and the ranks are averaged over all of them;
    inputs that fit go through in one call, exactly as without a budget."""
    if not hasattr(model, "attention_probs"):
        raise ValueError(f"head_effective_rank: a {type(model).__name__} has no attention_probs(x)")
    chunk = samples_per_chunk(model, x, memory_gb)
    if chunk >= x.shape[0]:
        return effective_rank(model.attention_probs(x)).mean(1)
    total = None
    for start in range(0, int(x.shape[0]), chunk):
        ranks = effective_rank(model.attention_probs(x[start:start + chunk])).sum(1)
        total = ranks if total is None else total + ranks
    return total / x.shape[0]
