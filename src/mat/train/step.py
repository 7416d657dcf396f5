"""One training step, the part every caller shares: the trainer (`Trainer._train_step`, which adds
the policy's decision, data parallelism and logging around it) and the throughput benchmarks.

    objective: loss = task loss + aux_loss_coef x the model's auxiliary loss (Switch's router load
               balancing; zero for the others), under bf16 autocast when asked (CUDA only)
    update:    backward, gradients reduced across processes (data parallel), clipped, then the
               optimizer step with the policy's masks (Algorithm 1, lines 15-17: theta^l -= eta
               grad for the theta^l in I; frozen modules keep their slices bit for bit)
"""

from __future__ import annotations

from typing import Callable

import torch


def objective(forward: Callable, inputs: torch.Tensor, targets: torch.Tensor, task_loss: Callable,
              aux_loss: Callable[[], torch.Tensor] | None = None, aux_coef: float = 0.0):
    """(training loss, task loss terms) of one batch. `task_loss(logits, targets)` returns the
    terms (`mat.train.tasks.LossOut`: .loss, .loss_sum, .correct, .count)."""
    out = task_loss(forward(inputs), targets)
    extra = aux_coef * aux_loss() if aux_loss is not None else 0.0
    return out.loss + extra, out


def autocast(bf16: bool):
    """The forward's precision: bf16 autocast on CUDA, else a no-op context."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)


def update(loss: torch.Tensor, optimizer, masks=None, *, params=None, grad_clip: float | None = None,
           reduce_grads: Callable[[], None] | None = None) -> None:
    """Backward of `loss`, then one optimizer step. `masks`: the masked optimizer's per-parameter
    masks (`mat.optim.decision_masks`), or a function making them at the step, or None for a plain
    torch optimizer. `reduce_grads`: sums
    the gradients across data-parallel processes between the backward and the step."""
    loss.backward()
    if reduce_grads is not None:
        reduce_grads()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if masks is None:
        optimizer.step()
    else:
        optimizer.step(masks() if callable(masks) else masks)
