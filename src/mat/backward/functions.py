"""Autograd functions whose backward computes weight gradients for the active slices only.

MAT saves compute by "performing a lighter back propagation pass only for appropriate subsets of
the modules" (paper Sec. 5.1). A head is a slice of a weight matrix and a filter is one output
channel of a kernel, so `requires_grad` cannot express freezing one; these functions do. Their
forward is the plain op (bitwise the same output); their backward

- computes the input gradient in full (frozen heads and filters still take part in the forward
  pass, so the gradient for the layers below flows through them), and
- computes the weight gradient with ONE smaller matmul / convolution over the active rows, columns
  or output channels only, scattered into a zero gradient. The frozen part is never computed, so
  `torch.utils.flop_counter.FlopCounterMode` (mat.flops) sees exactly the work that was skipped.

Index arguments are LongTensors of active positions, or None for "all of them". A parameter that
is frozen entirely is not handled here: the installer sets its `requires_grad` False for the step
and autograd skips it (see `mat.backward.install`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input, conv2d_weight


def _scatter(full_like: torch.Tensor, dim: int, idx: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
    """A zero tensor shaped like `full_like` holding `part` at positions `idx` along `dim`."""
    out = torch.zeros_like(full_like)
    return out.index_copy_(dim, idx, part.to(out.dtype))


class PartialLinear(torch.autograd.Function):
    """`F.linear(x, weight, bias)` whose weight gradient covers only `w_idx` along `w_dim`
    (0: output rows, e.g. a head's rows of q/k/v; 1: input columns, e.g. a head's columns of the
    attention output projection) and whose bias gradient covers only `b_idx`."""

    @staticmethod
    def forward(x, weight, bias, w_dim, w_idx, b_idx):
        return F.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias, w_dim, w_idx, b_idx = inputs
        ctx.save_for_backward(x, weight)
        ctx.w_dim, ctx.w_idx, ctx.b_idx = w_dim, w_idx, b_idx

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = grad_out.reshape(-1, grad_out.shape[-1])  # [N, out]
        gx = gw = gb = None
        if need_x:
            gx = g.mm(weight.to(g.dtype)).view(*x.shape[:-1], weight.shape[1]).to(x.dtype)
        if need_w:
            xs = x.reshape(-1, x.shape[-1]).to(g.dtype)  # [N, in]
            idx = ctx.w_idx
            if idx is None:
                gw = g.t().mm(xs).to(weight.dtype)
            elif ctx.w_dim == 0:  # rows: grad_W[idx] = g[:, idx]^T x
                gw = _scatter(weight, 0, idx, g.index_select(1, idx).t().mm(xs))
            else:  # columns: grad_W[:, idx] = g^T x[:, idx]
                gw = _scatter(weight, 1, idx, g.t().mm(xs.index_select(1, idx)))
        if need_b:
            idx = ctx.b_idx
            gb = g.sum(0) if idx is None else _scatter(g[0], 0, idx, g.index_select(1, idx).sum(0))
            gb = gb.to(weight.dtype)
        return gx, gw, gb, None, None, None


class PartialConv2d(torch.autograd.Function):
    """`F.conv2d(x, weight, bias, stride, padding, dilation, groups=1)` whose weight and bias
    gradients cover only the output channels `w_idx` / `b_idx` (a VGG filter is one output
    channel). The weight gradient of the active channels is one `conv2d_weight` call on the active
    channels of grad_output; the input gradient is one `conv2d_input` call over all channels."""

    @staticmethod
    def forward(x, weight, bias, w_idx, b_idx, stride, padding, dilation):
        return F.conv2d(x, weight, bias, stride, padding, dilation, 1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, bias, w_idx, b_idx, stride, padding, dilation = inputs
        ctx.save_for_backward(x, weight)
        ctx.w_idx, ctx.b_idx = w_idx, b_idx
        ctx.conv = (stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        stride, padding, dilation = ctx.conv
        g = grad_out
        gx = gw = gb = None
        if need_x:
            gx = conv2d_input(x.shape, weight.to(g.dtype), g, stride, padding, dilation, 1).to(x.dtype)
        if need_w:
            idx = ctx.w_idx
            xs = x.to(g.dtype)
            if idx is None:
                gw = conv2d_weight(xs, weight.shape, g, stride, padding, dilation, 1).to(weight.dtype)
            else:
                shape = (idx.numel(), *weight.shape[1:])
                part = conv2d_weight(xs, shape, g.index_select(1, idx), stride, padding, dilation, 1)
                gw = _scatter(weight, 0, idx, part)
        if need_b:
            idx = ctx.b_idx
            gb = g.sum((0, 2, 3)) if idx is None else _scatter(g[0, :, 0, 0], 0, idx, g.index_select(1, idx).sum((0, 2, 3)))
            gb = gb.to(weight.dtype)
        return gx, gw, gb, None, None, None, None, None
