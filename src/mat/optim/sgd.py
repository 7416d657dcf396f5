"""SGD with momentum, optional Nesterov and L2 weight decay, with per-element masks (`masked.py`).

With every element active this is torch.optim.SGD (dampening 0):

    d <- g + wd p;   b <- mu b + d;   d <- d + mu b (nesterov) or b;   p <- p - lr d

with lr = group lr x lr_scale. The momentum buffer starts at zero, which equals torch's "first step
copies the gradient" (mu * 0 + d = d exactly), and that holds per element: a module frozen until
step 50 starts its buffer at step 50. Weight decay is part of the gradient, so frozen elements
are not decayed.

Where `use_grad` is False but `active` is True (Multirate drift) the buffer stays as it is and the
parameter moves along it: p <- p - lr b. That needs a buffer, so it requires momentum > 0.
"""

from __future__ import annotations

import torch

from mat.optim.masked import Mask, MaskedOptimizer


class SGD(MaskedOptimizer):
    def __init__(self, named_params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        if not lr > 0:
            raise ValueError(f"SGD: lr must be > 0, got {lr}")
        if not 0.0 <= momentum < 1.0 or not weight_decay >= 0:
            raise ValueError(f"SGD: need 0 <= momentum < 1 and weight_decay >= 0, got {momentum}, {weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov needs momentum > 0")
        super().__init__(named_params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict, mask: Mask | None) -> None:
        mu, wd = group["momentum"], group["weight_decay"]
        d = grad.add(p, alpha=wd) if wd != 0 else grad
        if mu != 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            buf = state["momentum_buffer"]
            buf_new = buf.mul(mu).add_(d)
            direction = d.add(buf_new, alpha=mu) if group["nesterov"] else buf_new
            if mask is not None:
                buf_new = torch.where(mask.active & mask.use_grad, buf_new, buf)
                direction = torch.where(mask.use_grad, direction, buf)
            buf.copy_(buf_new)
        else:
            if mask is not None and bool((mask.active & ~mask.use_grad).any()):
                raise ValueError("SGD: moving without a gradient (use_grad False, Multirate drift) needs momentum > 0")
            direction = d
        if mask is None:
            p.add_(direction, alpha=-group["lr"])
        else:
            p.copy_(torch.where(mask.active, p - (group["lr"] * mask.lr_scale) * direction, p))
