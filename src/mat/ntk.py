"""Modular neural tangent kernels (paper Definition 1, Sec. 5 "Approximation of NTK", Appendix B.3).

For S sampled inputs x_1..x_S, let f(x_s) be the SUM of the model's logits for sample s (the
sum-of-logits approximation of Appendix B.3: one gradient per sample instead of one per output
unit). For a module theta^l (a set of parameter slices, `mat.partition`), J_l is the S x |theta^l|
matrix of per-sample gradients d f(x_s) / d theta^l, and the mNTK is Theta^l = J_l J_l^T (S x S).
Summed over a partition covering every parameter it is the full NTK (Eq. 1).

The NTK is a property of the deterministic function, so everything here runs the model in eval mode
(no dropout; BatchNorm with its running statistics) and restores the previous mode afterwards.
Parameters are made to require grad for the duration (a frozen module still has an mNTK) and their
flags are restored.

Fast path (`module_grams`): ONE batched forward and backward of sum-of-logits per chunk of samples,
with per-sample weight gradients rebuilt from each layer's input X [S, T, in] and output gradient
G [S, T, out] (for nn.Linear: grad_W[s] = sum_t G[s,t]^T X[s,t], `einsum('sto,sti->soi')`; similar
rules for Conv2d via unfold, BatchNorm2d in eval mode, LayerNorm and T5's RMS norm). This is exact
only when samples do not interact in the batched forward: true in eval mode for BERT and VGG
(BatchNorm uses running statistics), and for our Switch Transformer because it routes each sequence
as its own group (expert capacity counted per sequence; see `mat.models.switch`). A model that
mixed samples (batch-statistics BatchNorm, capacity shared across a batch) would need the vmap path.
Parameters used by any other kind of layer (embeddings, T5 relative position bias, tied weights
that an embedding also uses) fall back to torch.func `vmap(grad(...))` per sample.

A further exact saving: when the logits are the output of an nn.Linear, the sum of logits is
x . (W^T 1) + sum(b), so that layer is evaluated as a single output unit during the mNTK pass; the
[S, T, vocab] logits of an MLM head are never formed.

Conv filters of deep, low-resolution layers skip the per-sample gradients altogether (the "kernel
route", `_conv_filter_grams`): with im2col patches U [S, L, P] and output gradients G [S, L, out],
Theta_f[s,t] = sum_{l,m} G[s,l,f] (U U^T)[(s,l),(t,m)] G[t,m,f], one [S*L, S*L] product shared by all
filters of the layer. A cost model (`_kernel_is_cheaper`) picks the route per layer: for VGG16 at
width 1 and S = 64 it cuts the mNTK from 241 to 149 GFLOPs (the 512-filter layers at 4 x 4 and
2 x 2 positions). The distributed path (`mat.train.distributed`) gathers per-sample gradients and
always takes the direct route.

Grams of all heads of a layer share one reshape: a q/k/v per-sample gradient [S, H*d, in] is viewed
as [S, H, d*in] and contracted with a batched matmul to [H, S, S]; likewise for filters.

Returned Grams and eigenvalues are float64: per-sample gradients and Gram blocks are computed in
the model's float32, accumulated in float64, symmetrised, and eigen-decomposed with
`torch.linalg.eigvalsh`; tiny negative eigenvalues from round-off are clamped to 0.

Memory: activations of `chunk_size` samples at a time, plus the per-sample gradients of the owned
parameters for all S samples (S x |owned| floats; 270 MB for all heads of BERT-mini at S = 64, but
65 GB for the paper's Switch Transformer). `memory_gb` bounds the latter, with what the segmented
passes below hold besides (cached boundaries, kept activations; reserved per pass from a one-sample
probe, `_segmenting`): the owned parameters are split into passes of consecutive layers that fit it
(`mat.ntk_budget`), each pass adds its Gram
blocks and frees its gradients before the next. Only the owned parameters of a pass require grad
during it, so its backward stops below its lowest layer. A model that exposes its layer chain as
stages (`mat.ntk_stages`: BERT, Switch, VGG) has each pass run only its own stages, top-down, from
input boundaries cached by one forward and the gradient the pass above left at its top: every
stage runs once over all passes, at the cost of that one extra forward (`pass_gradients`). Other
models run the whole model in every pass. The Grams are the same as one pass's (the same
per-sample gradients; float64 sums in a possibly different order).
"""

from __future__ import annotations

import types
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch.utils._python_dispatch import _disable_current_modes
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from mat.partition import Partition

try:  # T5-style RMS norm (Switch Transformer); optional so the module does not depend on it
    from transformers.models.switch_transformers.modeling_switch_transformers import SwitchTransformersLayerNorm
except ImportError:  # pragma: no cover
    SwitchTransformersLayerNorm = ()


# ----------------------------------------------------------------------------- shared helpers
@contextmanager
def _ntk_mode(model: nn.Module, names: list[str]) -> Iterator[dict[str, nn.Parameter]]:
    """Eval mode, and requires_grad on `names` only, for the duration; both restored afterwards."""
    params = dict(model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise KeyError(f"ntk: the model has no parameter(s) {missing[:5]}")
    was_training = model.training
    flags = {n: p.requires_grad for n, p in params.items()}
    model.eval()
    wanted = set(names)
    for n, p in params.items():  # only `names`: the backward stops below the lowest of them
        p.requires_grad_(n in wanted)
    try:
        yield params
    finally:
        for n, flag in flags.items():
            params[n].requires_grad_(flag)
        model.train(was_training)


def _check_inputs(inputs: torch.Tensor) -> int:
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or inputs.shape[0] < 1:
        raise ValueError(f"ntk: inputs must be a tensor [S, ...] with S >= 1 samples, got {getattr(inputs, 'shape', inputs)}")
    return inputs.shape[0]


def _sum_of_logits(out) -> torch.Tensor:
    """Sum over all output units of the model's output (a tensor, or an object with `.logits`)."""
    logits = out.logits if hasattr(out, "logits") else out
    return logits.sum()


# ----------------------------------------------------------------------------- reference paths
def per_sample_grads_loop(model: nn.Module, inputs: torch.Tensor, param_names: list[str]) -> dict[str, torch.Tensor]:
    """Brute-force reference: for each sample, `autograd.grad` of its sum of logits.

    Returns {name: float tensor [S, *shape]} in eval mode (mode and requires_grad restored).
    """
    s = _check_inputs(inputs)
    with _ntk_mode(model, param_names) as params:
        ps = [params[n] for n in param_names]
        rows: list[list[torch.Tensor]] = [[] for _ in ps]
        for i in range(s):
            gs = torch.autograd.grad(_sum_of_logits(model(inputs[i : i + 1])), ps, allow_unused=True)
            for r, g, p in zip(rows, gs, ps):
                r.append(torch.zeros_like(p) if g is None else g)
    return {n: torch.stack(r) for n, r in zip(param_names, rows)}


def per_sample_grads_vmap(
    model: nn.Module, inputs: torch.Tensor, param_names: list[str], chunk_size: int | None = 16
) -> dict[str, torch.Tensor]:
    """Per-sample gradients with torch.func: `vmap(grad(sum of logits))` over `functional_call`,
    `chunk_size` samples at a time. Returns {name: [S, *shape]} (eval mode; mode restored)."""
    _check_inputs(inputs)
    with _ntk_mode(model, param_names) as params:
        primals = {n: params[n].detach() for n in param_names}

        def f(p, x):
            return _sum_of_logits(functional_call(model, p, (x.unsqueeze(0),)))

        return vmap(grad(f), in_dims=(None, 0), chunk_size=chunk_size)(primals, inputs)


# ----------------------------------------------------------------------------- fast path: hooks
def _conv_supported(m: nn.Conv2d) -> bool:
    return m.groups == 1 and m.padding_mode == "zeros" and not isinstance(m.padding, str)


def _supported(m: nn.Module) -> bool:
    """Layers whose per-sample parameter gradients we rebuild from (input, output gradient)."""
    if type(m) is nn.Linear or type(m) is nn.LayerNorm:
        return True
    if type(m) is nn.Conv2d:
        return _conv_supported(m)
    if type(m) is nn.BatchNorm2d:  # eval mode with running statistics: per-sample affine map
        return m.track_running_stats and m.running_mean is not None
    return SwitchTransformersLayerNorm != () and type(m) is SwitchTransformersLayerNorm


def _per_sample_rule(m: nn.Module, x: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
    """{attribute: per-sample gradient [S, *shape]} of layer `m` from its input x and output grad g."""
    s = x.shape[0]
    if isinstance(m, nn.Linear):
        xf, gf = x.reshape(s, -1, x.shape[-1]), g.reshape(s, -1, g.shape[-1])
        out = {"weight": torch.einsum("sto,sti->soi", gf, xf)}
        if m.bias is not None:
            out["bias"] = gf.sum(1)
        return out
    if isinstance(m, nn.Conv2d):
        cols = F.unfold(x, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)  # [S, in*k*k, L]
        gf = g.flatten(2)  # [S, out, L]
        out = {"weight": torch.bmm(gf, cols.transpose(1, 2)).view(s, *m.weight.shape)}
        if m.bias is not None:
            out["bias"] = gf.sum(2)
        return out
    if isinstance(m, nn.BatchNorm2d):
        xhat = (x - m.running_mean[:, None, None]) * torch.rsqrt(m.running_var[:, None, None] + m.eps)
        return {"weight": (g * xhat).sum((2, 3)), "bias": g.sum((2, 3))}
    if isinstance(m, nn.LayerNorm):  # y = w * xhat + b over the trailing normalized_shape
        xhat = F.layer_norm(x, m.normalized_shape, eps=m.eps)
        shape = (s, -1, *m.normalized_shape)
        out = {"weight": (g * xhat).reshape(shape).sum(1)}
        if m.bias is not None:
            out["bias"] = g.reshape(shape).sum(1)
        return out
    # T5 RMS norm: y = w * x / rms(x)
    xhat = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + m.variance_epsilon)
    return {"weight": (g * xhat).reshape(s, -1, x.shape[-1]).sum(1)}


def _summed_linear_forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """Sum over output units of a Linear, as one unit: x . (W^T 1) + sum(b)."""
    y = F.linear(x, self.weight.sum(0, keepdim=True))
    return y + self.bias.sum() if self.bias is not None else y


def _output_linear(model: nn.Module, sample: torch.Tensor) -> nn.Linear | None:
    """The nn.Linear whose output IS the model's logits tensor, if any (one-sample probe)."""
    outs: list[tuple[nn.Linear, torch.Tensor]] = []
    hooks = [
        m.register_forward_hook(lambda mod, a, y: outs.append((mod, y)))
        for m in model.modules()
        if type(m) is nn.Linear
    ]
    try:
        with torch.no_grad():
            out = model(sample)
    finally:
        for h in hooks:
            h.remove()
    logits = out.logits if hasattr(out, "logits") else out
    return next((m for m, y in outs if y is logits), None)


def _param_owners(model: nn.Module) -> dict[int, list[tuple[nn.Module, str]]]:
    """id(parameter) -> every (module, attribute) that holds it directly (tied weights: several)."""
    owners: dict[int, list[tuple[nn.Module, str]]] = {}
    for m in model.modules():
        for attr, p in m.named_parameters(recurse=False):
            owners.setdefault(id(p), []).append((m, attr))
    return owners


def per_sample_grads_hooks(
    model: nn.Module,
    inputs: torch.Tensor,
    param_names: list[str],
    chunk_size: int | None = 16,
    sum_output_layer: bool = True,
) -> dict[str, torch.Tensor]:
    """Per-sample gradients of sum-of-logits from batched forward/backward passes (module docstring).

    `chunk_size` samples per pass (None: all at once) bounds activation memory. Parameters held by
    layers without a rule go through `per_sample_grads_vmap`. `sum_output_layer=False` disables the
    one-unit evaluation of a final nn.Linear (for benchmarking). Returns {name: [S, *shape]}.
    """
    grads, _ = _hooked_passes(model, inputs, param_names, chunk_size, sum_output_layer)
    return grads


def _grad(root: torch.Tensor | None, root_grad: torch.Tensor | None, wrt: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """d root / d wrt (with output gradient `root_grad`); None where a tensor does not depend on
    anything that requires grad."""
    live = [i for i, t in enumerate(wrt) if t.requires_grad]
    out: list[torch.Tensor | None] = [None] * len(wrt)
    if live and root is not None and root.requires_grad:
        got = torch.autograd.grad(
            root, [wrt[i] for i in live], grad_outputs=None if root_grad is None else root_grad, allow_unused=True
        )
        for i, g in zip(live, got):
            out[i] = g
    return out


def _kernel_is_cheaper(m: nn.Module, out: torch.Tensor, s: int) -> bool:
    """For a conv layer's filters: is the kernel route (`_conv_filter_grams`) cheaper than forming
    the S per-sample weight gradients and their Grams? Per sample with L output positions, `out`
    filters and P = in*k*k weights per filter, the direct route costs ~ S*L*out*P + S^2*out*P
    multiply-adds, the kernel route ~ (S*L)^2 * (P + out): cheaper when L^2 is small against `out`
    (the deep, low-resolution layers of VGG). `out`: the layer's output [.., out, H', W'], L = H' W'."""
    if not isinstance(m, nn.Conv2d):
        return False
    n_pos, p = out.shape[-2] * out.shape[-1], m.weight[0].numel()
    direct = s * n_pos * m.out_channels * p + s * s * m.out_channels * p
    kernel = (s * n_pos) ** 2 * (p + m.out_channels)
    return kernel < direct


_PROBE = object()  # `head` not given: find the output layer with a one-sample forward


def _hooked_passes(
    model: nn.Module,
    inputs: torch.Tensor,
    param_names: list[str],
    chunk_size: int | None,
    sum_output_layer: bool = True,
    kernel_names: frozenset[str] = frozenset(),
    head: nn.Linear | None | object = _PROBE,
    step=None,
) -> tuple[dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The batched passes behind `per_sample_grads_hooks`.

    Returns (per-sample gradients {name: [S, *shape]}, kernel captures). A conv weight named in
    `kernel_names` whose layer `_kernel_is_cheaper` is not turned into per-sample gradients: its
    im2col patches U [S, L, P] and output gradients G [S, L, out] are kept instead, for
    `_conv_filter_grams`.

    `head`: the output nn.Linear evaluated as one unit (`_output_linear`; found here if not given).
    `step(start, stop) -> (root, root_grad, wrt, keep, given)`: how a chunk runs (`mat.ntk_stages`):
    the tensor to differentiate (None: nothing runs) and its output gradient, extra tensors whose
    gradients go to `keep(start, stop, grads)`, and [(layer, input, output gradient)] of calls a
    higher pass ran for this one. None: the whole model, from the sum of logits."""
    s = _check_inputs(inputs)
    chunk = s if not chunk_size else chunk_size
    params = dict(model.named_parameters())
    owners = _param_owners(model)
    hooked = [n for n in param_names if n in params and all(_supported(m) for m, _ in owners[id(params[n])])]
    rest = [n for n in param_names if n not in hooked]
    result: dict[str, torch.Tensor] = per_sample_grads_vmap(model, inputs, rest, chunk_size) if rest else {}
    if not hooked:
        return result, {}

    # layer -> [(attribute, name)] for the hooked parameters it holds
    wanted: dict[nn.Module, list[tuple[str, str]]] = {}
    for n in hooked:
        for m, attr in owners[id(params[n])]:
            wanted.setdefault(m, []).append((attr, n))
    # a conv weight may take the kernel route only if that layer alone holds it
    kernel_layers = {
        m: n for m, attrs in wanted.items() for attr, n in attrs
        if attr == "weight" and n in kernel_names and len(owners[id(params[n])]) == 1 and isinstance(m, nn.Conv2d)
    }
    # Per-sample gradients go straight into [S, *shape] buffers, chunk by chunk: one copy, never a
    # list of chunks and their concatenation. A kernel-route weight's buffer is never made.
    out: dict[str, torch.Tensor] = {}
    captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def rows(n: str) -> torch.Tensor:
        if n not in out:
            out[n] = params[n].new_zeros(s, *params[n].shape)  # a parameter never used keeps zeros
        return out[n]

    for n in hooked:
        if n not in kernel_layers.values():
            rows(n)
    with _ntk_mode(model, hooked):
        if head is _PROBE:
            head = _output_linear(model, inputs[:1]) if sum_output_layer else None
        calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []  # (layer, input, output)

        def capture(mod, args, out):
            calls.append((mod, args[0].detach(), out))

        hooks = [m.register_forward_hook(capture) for m in wanted if m is not head]
        if head is not None:
            hooks.append(head.register_forward_hook(capture) if head in wanted else None)
            head.forward = types.MethodType(_summed_linear_forward, head)
        try:
            for start in range(0, s, chunk):
                calls.clear()
                c = min(chunk, s - start)
                if step is None:
                    root, root_grad, wrt, keep, given = _sum_of_logits(model(inputs[start : start + c])), None, [], None, []
                else:
                    root, root_grad, wrt, keep, given = step(start, start + c)
                need = [y for m, _, y in calls if m is not head]
                grads = _grad(root, root_grad, need + wrt)
                if keep is not None:
                    keep(start, start + c, grads[len(need) :])
                it = iter(grads[: len(need)])
                # (layer, input, output, output gradient): this chunk's own calls, then calls whose
                # input and output gradient a higher pass kept (`given`; the gradient stands for y)
                items = [(m, x, y, None if m is head else next(it)) for m, x, y in calls]
                items += [(m, x, g, g) for m, x, g in given]
                for m, x, y, g in items:
                    if m is head:  # d(sum of logits)/d(logits) = 1: grad_W[s] = 1 (sum_t x[s,t])^T
                        xf = x.reshape(x.shape[0], -1, x.shape[-1])
                        rule = {
                            "weight": xf.sum(1)[:, None, :].expand(-1, m.out_features, -1),
                            "bias": xf.new_full((xf.shape[0], m.out_features), float(xf.shape[1])),
                        }
                    else:
                        g = torch.zeros_like(y) if g is None else g
                        if m in kernel_layers and kernel_layers[m] not in out and _kernel_is_cheaper(m, y, s):
                            cols = F.unfold(x, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)
                            gf = g.flatten(2)
                            if kernel_layers[m] not in captured:  # U [S, L, P], G [S, L, out]
                                captured[kernel_layers[m]] = (
                                    cols.new_zeros(s, cols.shape[2], cols.shape[1]),
                                    gf.new_zeros(s, gf.shape[2], gf.shape[1]),
                                )
                            u, gs = captured[kernel_layers[m]]
                            u[start : start + c] += cols.transpose(1, 2)
                            gs[start : start + c] += gf.transpose(1, 2)
                            if m.bias is None:
                                continue
                            rule = {"bias": gf.sum(2)}
                        else:
                            rule = _per_sample_rule(m, x, g)
                    for attr, n in wanted[m]:
                        if attr in rule and n not in captured:
                            rows(n)[start : start + c] += rule[attr].detach()
                    del rule
                calls.clear()
                del items, given
        finally:
            for h in hooks:
                if h is not None:
                    h.remove()
            if head is not None:
                del head.forward
    for n in hooked:
        if n not in captured:
            result[n] = rows(n)
    return result, captured


def _conv_filter_grams(u: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Per-filter Grams of a conv layer without per-sample gradients: [out, S, S], float64.

    The per-sample gradient of filter f is J_f[s] = sum_l g[s,l,f] u[s,l] (u: the im2col patch of
    output position l, [S, L, P]; g: output gradients [S, L, out]). So
    Theta_f[s,t] = sum_{l,m} g[s,l,f] K[s,l,t,m] g[t,m,f] with K = U U^T over all (sample, position)
    pairs, one [S*L, S*L] product shared by every filter of the layer."""
    s, n_pos, _ = u.shape
    k = (u.reshape(s * n_pos, -1) @ u.reshape(s * n_pos, -1).T).view(s, n_pos, s, n_pos)
    z = torch.einsum("sltm,tmf->sltf", k, g)  # sum over t's positions m
    return torch.einsum("slf,sltf->fst", g, z).double()


# ----------------------------------------------------------------------------- Grams and spectra
def _spans(partition: Partition) -> dict[str, tuple[int | None, list[tuple[int, int, int]]]]:
    """param -> (dim, [(start, stop, module index)]) sorted by start."""
    out: dict[str, tuple[int | None, list]] = {}
    for i, m in enumerate(partition.modules):
        for sl in m.slices:
            out.setdefault(sl.param, (sl.dim, []))[1].append((sl.start, sl.stop, i))
    for _, spans in out.values():
        spans.sort()
    return out


def _add_grams(grams: torch.Tensor, g: torch.Tensor, dim: int | None, spans: list[tuple[int, int, int]]) -> None:
    """grams[i] += J_i J_i^T for every module i owning a slice of this parameter (g: [S, *shape]).

    Equal-width adjacent slices (all heads of a projection, all filters of a conv) are handled by one
    reshape [S, n, width * rest] and one batched matmul."""
    s = g.shape[0]
    if dim is None:
        j = g.reshape(s, -1)
        grams[spans[0][2]] += (j @ j.T).double()
        return
    width = spans[0][1] - spans[0][0]
    regular = all(b - a == width and a == spans[0][0] + k * width for k, (a, b, _) in enumerate(spans))
    if regular:
        n = len(spans)
        sub = g.narrow(dim + 1, spans[0][0], n * width).unflatten(dim + 1, (n, width)).movedim(dim + 1, 0)
        j = sub.reshape(n, s, -1)  # [n, S, p]
        idx = torch.tensor([i for _, _, i in spans], device=grams.device)
        grams.index_add_(0, idx, torch.bmm(j, j.transpose(1, 2)).double())
        return
    for a, b, i in spans:
        j = g.narrow(dim + 1, a, b - a).reshape(s, -1)
        grams[i] += (j @ j.T).double()


def passes(
    model: nn.Module,
    partition: Partition,
    samples: int,
    memory_gb: float | None,
    copies: int = 1,
    sample: torch.Tensor | None = None,
):
    """The passes (`mat.ntk_budget.Pass`) of an mNTK of `partition` on `samples` inputs within
    `memory_gb`; raises `mat.ntk_budget.NtkBudgetError` for a layer that alone exceeds it. `sample`:
    one input [1, ...] (any values; the meta device will do), from which the reserve of segmented
    passes is counted (`_segmenting`); None: per-sample gradients only."""
    from mat.ntk_budget import plan_passes

    params, owners = dict(model.named_parameters()), _param_owners(model)
    spans = _spans(partition)
    by_vmap = [n for n in spans if not all(_supported(m) for m, _ in owners[id(params[n])])]
    sliced = [n for n, (dim, _) in spans.items() if dim is not None]  # `_add_grams` copies their rows
    hooked = [n for n in spans if n not in set(by_vmap)]
    seg = None if sample is None or memory_gb is None else _segmenting(model, hooked, sample, samples)
    return plan_passes(model, list(spans), samples, memory_gb, copies, by_vmap, sliced if copies == 1 else None, seg)


def _segmenting(model: nn.Module, hooked: list[str], sample: torch.Tensor, samples: int):
    """What the budget reserves for segmented passes (`mat.ntk_budget.Segmenting`), read off one
    forward of `sample` [1, ...] through the model's stages without autograd: each hooked layer's
    stage, the widest boundary h_k (k < n) and each hooked layer's input + output bytes (its kept
    input and output gradient), times `samples`. None for a model whose passes are not segmented."""
    from mat.ntk_budget import Segmenting
    from mat.ntk_stages import context_of, stage_index, stages_of

    stages = stages_of(model)
    if not stages:
        return None
    index = stage_index(stages)
    layers = list(dict.fromkeys(n.rpartition(".")[0] or n for n in hooked))
    stage = {x: index(x) for x in layers}
    if any(k is None for k in stage.values()):
        return None
    modules = dict(model.named_modules())
    acts: dict[str, int] = dict.fromkeys(layers, 0)

    def record(name: str):
        def hook(m, a, y):
            acts[name] += a[0].nbytes + y.nbytes

        return hook

    hooks = [modules[x].register_forward_hook(record(x)) for x in layers if x in modules]
    widest = 0
    try:
        # A planning probe, not part of the measurement: dispatch modes (the FLOP meter's
        # FlopCounterMode) do not see it, so flops_mntk counts the mNTK's own work only.
        with _ntk_mode(model, []), torch.no_grad(), _disable_current_modes():
            h, ctx = sample, context_of(model, sample)
            for st in stages:
                widest = max(widest, h.nbytes)
                h = st.run(h, ctx)
    finally:
        for hk in hooks:
            hk.remove()
    return Segmenting(stage, samples * widest, {x: samples * b for x, b in acts.items()})


def _hookable(model: nn.Module) -> Callable[[str], bool]:
    params, owners = dict(model.named_parameters()), _param_owners(model)
    return lambda n: n in params and all(_supported(m) for m, _ in owners[id(params[n])])


def _segments(model: nn.Module, inputs: torch.Tensor, groups: list[list[str]]):
    """(stages, per-pass `Segment`s) if the passes can run only their own stages, else None
    (`mat.ntk_stages`). The model is in `_ntk_mode`."""
    from torch.utils._pytree import tree_leaves

    from mat.ntk_stages import context_of, plan_segments, stages_of

    stages = stages_of(model)
    if not stages:
        return None
    hookable = _hookable(model)
    hooked = [[n for n in g if hookable(n)] for g in groups]
    params = dict(model.named_parameters())
    path = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}
    owners = {n: [path[id(m)] for m, _ in _param_owners(model)[id(params[n])]] for g in hooked for n in g}
    segs = plan_segments(stages, hooked, owners)
    if segs is None:
        return None
    with _ntk_mode(model, [n for g in hooked for n in g]):  # a context must not depend on a hooked parameter
        if any(isinstance(t, torch.Tensor) and t.requires_grad for t in tree_leaves(context_of(model, inputs[:1]))):
            return None
    return stages, segs


def pass_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    groups: list[list[str]],
    chunk_size: int | None,
    kernel_names: frozenset[str] = frozenset(),
    held: dict | None = None,
) -> Iterator[tuple[list[str], dict[str, torch.Tensor], dict[str, tuple[torch.Tensor, torch.Tensor]]]]:
    """Per pass (`groups`: the parameter names of each pass, in forward order), TOP-DOWN (the last
    group first): (names, per-sample gradients {name: [S, *shape]}, kernel captures), as
    `_hooked_passes` gives them. A model exposing its stages (`mat.ntk_stages`) has each pass run
    only its own stages, from boundaries cached by one forward; otherwise every pass runs the whole
    model. Eval mode for the duration. If `held` is a dict, held["boundary_bytes"] is set to the
    most bytes the cached boundaries and boundary gradients held at once, held["deferred_bytes"]
    to the most the kept inputs and output gradients of split stages held (0 on the full path), and
    held["per_pass"] to the list of the two together at each pass, in the order yielded."""
    from mat.ntk_stages import context_of

    s = _check_inputs(inputs)
    chunk = s if not chunk_size else chunk_size
    with _ntk_mode(model, []):
        head = _output_linear(model, inputs[:1])
        plan = _segments(model, inputs, groups)
        if held is not None:
            held["boundary_bytes"] = held["deferred_bytes"] = 0
            held["per_pass"] = []
        if plan is None:
            for names in reversed(groups):
                if held is not None:
                    held["per_pass"].append(0)
                yield names, *_hooked_passes(model, inputs, names, chunk, kernel_names=kernel_names & set(names), head=head)
            return
        stages, segs = plan
        n = len(stages)
        starts = {sg.lo for sg in segs if sg is not None and sg.runs}
        cached: dict[int, torch.Tensor] = {}  # boundary k -> h_k of all S samples (k = 0: the inputs)
        top = max(starts)
        with torch.no_grad():  # 1. one forward below the highest pass keeps every pass's input boundary
            for start in range(0, s, chunk):
                x = inputs[start : start + chunk]
                ctx, h = context_of(model, x), x
                for k in range(top + 1):
                    if k in starts and k > 0:
                        if k not in cached:
                            cached[k] = h.new_empty(s, *h.shape[1:])
                        cached[k][start : start + h.shape[0]] = h
                    if k < top:
                        h = stages[k].run(h, ctx)
                del h, ctx
        grad_at: dict[int, torch.Tensor] = {}  # boundary k -> d(sum of logits)/d h_k of all S samples
        modules = dict(model.named_modules())
        kept: dict[nn.Module, list[list[torch.Tensor]]] = {}  # deferred layer -> per call [x, g] of all S

        def buffer(t: torch.Tensor) -> torch.Tensor:
            return t.new_empty(s, *t.shape[1:])

        def step_of(sg, mine: set[nn.Module]):
            def step(start: int, stop: int):
                given = [(m, x[start:stop], g[start:stop]) for m in mine if m in kept for x, g in kept[m]]
                if not sg.runs:
                    return None, None, [], None, given
                x = inputs[start:stop]
                ctx = context_of(model, x)
                h = x if sg.lo == 0 else cached[sg.lo][start:stop]
                h = h.detach().requires_grad_(sg.below and h.is_floating_point())
                if h.requires_grad:  # a non-leaf: FlopCounterMode's module hooks cannot take a leaf in autograd.grad
                    h = h.view_as(h)
                wrt = [h] if sg.below else []
                seen: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []  # deferred layers' calls
                hooks = [modules[p].register_forward_hook(lambda m, a, y: seen.append((m, a[0].detach(), y))) for p in sg.deferred]
                # the deferred layers' own parameters require grad while the stage runs, so their
                # outputs are differentiable even where nothing below them is (their weight
                # gradients are never asked for)
                theirs = [q for p in sg.deferred for q in modules[p].parameters(recurse=False) if not q.requires_grad]
                try:
                    for q in theirs:
                        q.requires_grad_(True)
                    h = stages[sg.lo].run(h, ctx)
                finally:
                    for hk in hooks:
                        hk.remove()
                    for q in theirs:
                        q.requires_grad_(False)
                for k in range(sg.lo + 1, sg.end + 1):
                    h = stages[k].run(h, ctx)
                top_grad = None if sg.end + 1 == n else grad_at[sg.end + 1][start:stop]

                def keep(a: int, b: int, got: list) -> None:
                    if sg.below:
                        g = torch.zeros_like(wrt[0]) if got[0] is None else got[0]
                        if sg.lo not in grad_at:
                            grad_at[sg.lo] = buffer(g)
                        grad_at[sg.lo][a:b] = g
                    counts: dict[nn.Module, int] = {}
                    for (m, x_m, y_m), g in zip(seen, got[len(wrt) :]):
                        i = counts[m] = counts.get(m, -1) + 1
                        g = torch.zeros_like(y_m) if g is None else g
                        if len(kept.setdefault(m, [])) <= i:
                            kept[m].append([buffer(x_m), buffer(g)])
                        kept[m][i][0][a:b], kept[m][i][1][a:b] = x_m, g

                root = _sum_of_logits(h) if top_grad is None else h
                return root, top_grad, wrt + [y for _, _, y in seen], keep, given

            return step

        owners = _param_owners(model)
        params = dict(model.named_parameters())
        for i in reversed(range(len(groups))):  # 2. top-down
            names, sg = groups[i], segs[i]
            ks = kernel_names & set(names)
            if sg is None:  # no hooked parameter: the vmap route runs the whole model anyway
                if held is not None:
                    held["per_pass"].append(sum(t.nbytes for t in (*cached.values(), *grad_at.values())) + sum(
                        t.nbytes for calls in kept.values() for pair in calls for t in pair))
                yield names, *_hooked_passes(model, inputs, names, chunk, kernel_names=ks, head=head)
                continue
            mine = {m for n in names for m, _ in owners[id(params[n])]}
            got = _hooked_passes(model, inputs, names, chunk, kernel_names=ks, head=head, step=step_of(sg, mine))
            if held is not None:
                now = sum(t.nbytes for t in (*cached.values(), *grad_at.values()))
                held["boundary_bytes"] = max(held["boundary_bytes"], now)
                deferred = sum(t.nbytes for calls in kept.values() for pair in calls for t in pair)
                held["deferred_bytes"] = max(held["deferred_bytes"], deferred)
                held["per_pass"].append(now + deferred)
            for m in mine:
                kept.pop(m, None)
            if sg.runs and all(o is None or not o.runs or o.lo != sg.lo for o in segs[:i]):
                cached.pop(sg.lo, None)
            if sg.runs:  # what it started from is spent; what it leaves is the next running pass's top
                for k in [k for k in grad_at if not (sg.below and k == sg.lo)]:
                    del grad_at[k]
            yield names, *got


def module_grams(
    model: nn.Module,
    inputs: torch.Tensor,
    partition: Partition,
    chunk_size: int = 16,
    memory_gb: float | None = None,
    pass_bytes: list[int] | None = None,
    held: dict | None = None,
) -> torch.Tensor:
    """mNTK Gram matrices Theta^l = J_l J_l^T (Definition 1) for every module of `partition`.

    `inputs`: S samples in the model's input format ([S, T] token ids or [S, C, H, W] images).
    Gradients are computed only for parameters the partition owns. `memory_gb` bounds the
    per-sample gradients, cached boundaries and kept activations held at once (`mat.ntk_budget`): the owned parameters are split into
    passes of consecutive layers, each one batched forward + backward per chunk of `chunk_size`
    samples (of its own stages only where the model exposes them, `pass_gradients`), whose Gram
    blocks are added before its gradients are freed; None: one pass. If `pass_bytes` is a list,
    the bytes of per-sample gradients (and kernel-route patches) each pass held are appended to it;
    `held`: as in `pass_gradients` (cached boundaries, kept activations). Returns float64 [n_modules, S, S], row order = partition order.
    """
    s = _check_inputs(inputs)
    partition.check(dict(model.named_parameters()))
    spans = _spans(partition)
    filters = frozenset(n for n, (dim, _) in spans.items() if dim == 0)  # only conv weights take it
    grams = torch.zeros(len(partition), s, s, dtype=torch.float64, device=inputs.device)
    groups = [[n for n in spans if n in set(p.names)] for p in passes(model, partition, s, memory_gb, sample=inputs[:1])]
    for names, grads, kernels in pass_gradients(model, inputs, groups, chunk_size, filters, held):
        if pass_bytes is not None:
            pass_bytes.append(sum(g.nbytes for g in grads.values()) + sum(u.nbytes + g.nbytes for u, g in kernels.values()))
        for name in names:
            dim, sp = spans[name]
            if name in kernels:  # per-filter Grams straight from the layer's patches (`_conv_filter_grams`)
                per_filter = _conv_filter_grams(*kernels.pop(name))
                for a, b, i in sp:
                    grams[i] += per_filter[a:b].sum(0)
            else:
                _add_grams(grams, grads.pop(name), dim, sp)  # and free its per-sample gradients
        del grads, kernels
    return 0.5 * (grams + grams.transpose(1, 2))  # exactly symmetric (float32 blocks round asymmetrically)


def eigenvalues(grams: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of symmetric PSD matrices [..., S, S], descending, float64, negatives from
    round-off clamped to 0."""
    return torch.linalg.eigvalsh(grams.double()).flip(-1).clamp_min(0.0)


def module_ntk(
    model: nn.Module,
    inputs: torch.Tensor,
    partition: Partition,
    chunk_size: int = 16,
    memory_gb: float | None = None,
    pass_bytes: list[int] | None = None,
) -> dict[str, torch.Tensor]:
    """{module name: all S eigenvalues of its mNTK, descending (float64)}. lambda_max is element 0.
    `memory_gb`, `pass_bytes`: as in `module_grams`."""
    eig = eigenvalues(module_grams(model, inputs, partition, chunk_size, memory_gb, pass_bytes))
    return dict(zip(partition.names, eig))


def full_ntk(model: nn.Module, inputs: torch.Tensor, params: list[str] | None = None) -> torch.Tensor:
    """The NTK Theta = J J^T [S, S] (float64) over all parameters (or the named ones), computed
    directly from vmap per-sample gradients -- independently of the fast path, as the reference
    for Eq. 1 (the NTK is the sum of the mNTKs of a partition covering every parameter)."""
    s = _check_inputs(inputs)
    names = list(params) if params is not None else [n for n, _ in model.named_parameters()]
    grads = per_sample_grads_vmap(model, inputs, names)
    theta = torch.zeros(s, s, dtype=torch.float64, device=inputs.device)
    for n in names:
        j = grads.pop(n).reshape(s, -1).double()
        theta += j @ j.T
    return theta
