"""AdamW (Loshchilov & Hutter) with per-element masks (see `masked.py`).

With every element active this is torch.optim.AdamW (decoupled weight decay, bias correction):

    m <- beta1 m + (1 - beta1) g          v <- beta2 v + (1 - beta2) g^2          t <- t + 1
    p <- p (1 - lr wd) - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

with lr = group lr x lr_scale. The step count t is kept PER ELEMENT (`state["step"]`, an int32
tensor shaped like the parameter) and advances only where the element's state absorbs a gradient,
so a module frozen for 100 steps resumes with its own bias correction, not the global one. (The
key is "step" because `Optimizer.load_state_dict` casts every other state tensor to the
parameter's dtype, which would turn counts into floats, or worse into bfloat16.) The paper's BERT uses betas (0, 0):
0 ** t = 0 for t >= 1, so the bias corrections are exactly 1 and nothing divides by zero.

Where `use_grad` is False but `active` is True (Multirate drift), m, v and t stay as they are and
the parameter moves along the stored m / sqrt(v), with decoupled weight decay; an element that
has never absorbed a gradient (t = 0) has no direction and does not move.
"""

from __future__ import annotations

import math

import torch

from mat.optim.masked import Mask, MaskedOptimizer


class AdamW(MaskedOptimizer):
    def __init__(self, named_params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        if not lr > 0:
            raise ValueError(f"AdamW: lr must be > 0, got {lr}")
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"AdamW: betas must lie in [0, 1), got {tuple(betas)}")
        if not eps > 0 or not weight_decay >= 0:
            raise ValueError(f"AdamW: need eps > 0 and weight_decay >= 0, got eps={eps}, weight_decay={weight_decay}")
        super().__init__(named_params, dict(lr=lr, betas=(float(b1), float(b2)), eps=eps, weight_decay=weight_decay))

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict, mask: Mask | None) -> None:
        b1, b2 = group["betas"]
        eps, wd = group["eps"], group["weight_decay"]
        if not state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] = torch.zeros_like(p, dtype=torch.int32, memory_format=torch.preserve_format)
        if state["step"].device != p.device:  # load_state_dict leaves "step" where it was saved
            state["step"] = state["step"].to(p.device)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]

        m_new = m.lerp(grad, 1.0 - b1)
        v_new = v.mul(b2).addcmul_(grad, grad, value=1.0 - b2)
        t_new = t + 1
        if mask is None:
            lr = group["lr"]
        else:
            absorb = mask.active & mask.use_grad
            m_new = torch.where(absorb, m_new, m)
            v_new = torch.where(absorb, v_new, v)
            t_new = torch.where(absorb, t_new, t)
            lr = group["lr"] * mask.lr_scale

        tf = t_new.to(torch.float32)
        bc1 = _bias_correction(b1, tf)
        bc2_sqrt = _bias_correction(b2, tf).sqrt()
        denom = v_new.sqrt().div_(bc2_sqrt).add_(eps)
        p_new = p.mul(1.0 - lr * wd) - (lr / bc1) * m_new / denom
        if mask is not None:
            p_new = torch.where(mask.active & (t_new > 0), p_new, p)
        p.copy_(p_new)
        m.copy_(m_new)
        v.copy_(v_new)
        t.copy_(t_new)


def _bias_correction(beta: float, t: torch.Tensor) -> torch.Tensor:
    """1 - beta**t, accurate in float32 even for t = 1 and beta near 1 (-expm1(t log beta))."""
    if beta == 0.0:
        return torch.ones_like(t)  # 1 - 0**t = 1 for t >= 1; t = 0 never moves
    return -torch.expm1(t * math.log(beta))
