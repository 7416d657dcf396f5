"""Wire the partial backward into a model, driven by its module partition.

`install_partial_backward(model, partition)` reads the partition (the same one the mNTK, the
policies and the figures read) and, for every parameter a module owns:

- whole tensors (experts, layers): `requires_grad` is set False for a step in which the owning
  module is frozen, so autograd skips the weight gradient;
- a slice of an `nn.Linear` weight/bias (heads: rows of q/k/v, columns of the output projection)
  or of an `nn.Conv2d` kernel/bias along the output channel (filters): the layer's `forward` is
  replaced, on the instance only, by one that calls `PartialLinear` / `PartialConv2d`, whose
  backward computes weight gradients for the active slices only (never computed-then-zeroed);
- a slice of any other parameter (BatchNorm scale/shift of a filter): its gradient is a
  per-channel reduction (no matmul, O(B*H*W) per channel, 0 FLOPs in FlopCounterMode) computed
  by the fused BatchNorm backward; skipping single channels would need a slower hand-written
  BatchNorm backward, so the frozen channels are zeroed by a gradient hook instead.

Whenever every slice of a tensor is frozen its `requires_grad` is set False for the step, so
autograd skips that gradient altogether; and when nothing below a layer needs a gradient, the
layer's input gradient is skipped too (autograd's own rule, which the custom functions honour via
`needs_input_grad`). That happens in VGG when the lowest conv blocks are frozen whole. It cannot
happen in BERT or the Switch Transformer: their embeddings are always trained (no partition owns
them), so the input gradient is needed all the way down to the embedding output, through frozen
heads and experts too. A frozen expert therefore still costs its input-gradient matmuls; only its
two weight-gradient matmuls are skipped.

Forward outputs are bitwise the plain model's: the replacement forward runs the same op.

torch.func (the mNTK): the mNTK needs the gradient of every module, frozen or not. Under a
torch.func transform (vmap/grad over functional_call) the replaced forwards run the plain op, so
per-sample gradients are exact whatever the active set. For an mNTK computed with plain autograd
over the model's own parameters, wrap it in `with pb.disabled():` (everything active, original
`requires_grad` restored, hooks off), or call `pb.remove()`.

Pruned heads leave the computation (`set_removed`, Table 5; Appendix B.2: "pruning methods
eliminate the forward and backward propagations of pruned modules"). The replaced forward of q, k,
v and the output projection then multiplies by the KEPT rows (q/k/v weights and biases) and
columns (output projection) only, gathered with `index_select`: q/k/v come out with fewer heads,
the attention (which reshapes with -1 heads) forms scores and contexts for the kept heads only,
and the output projection reads the kept heads' columns. A pruned head's matmuls, attention
scores, input gradients and weight gradients never run, so FlopCounterMode does not count them.
The parameters keep their shapes (the gather's backward scatters the kept rows' gradients into a
full-size zero gradient): the partition, the masked optimizer and its state, checkpoints and resume
are untouched, and a pruned head's slices stay the zeros the trainer set, so the pruned model is
the same function as the zeroed one. Removal is an index map, not a reshaped model: exact, cheap
(one gather of the kept weights per forward, 0 FLOPs) and reversible. `disabled()` (the
measurements: mNTK, SNIP, attention ranks) runs the full-width model, pruned heads present with
zero weights: the same function and the same eigenvalues for every surviving head, but the
measurement's FLOPs include the zero heads. A layer whose every head is pruned (possible only
without the protecting strategy) keeps computing them with zero weights. Only modules whose every slice is rows of an
nn.Linear weight/bias or columns of its weight can be removed; the caller says which (heads of a
model whose attention reshapes with -1 heads, `mat.models.removable_modules`).
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass

import torch
from torch import nn

from mat.backward.functions import PartialConv2d, PartialLinear
from mat.partition import Partition


@dataclass
class _Sliced:
    """One parameter that modules own slices of along `dim`."""

    name: str
    param: nn.Parameter
    dim: int
    owner: torch.Tensor  # long [shape[dim]]: owning module per index, -1 = nobody (always trained)
    how: str  # "skip" (custom autograd function) or "zero" (gradient hook)
    mode: str = "all"  # this step: "all" active, "none" active, or "some" (among the kept indices)
    idx: torch.Tensor | None = None  # active indices along dim when mode == "some", among the kept ones
    keep: torch.Tensor | None = None  # indices along dim left after removing pruned modules; None: all
    mask: torch.Tensor | None = None  # 0/1 broadcastable mask when mode == "some" and how == "zero"


@dataclass
class _Layer:
    """An nn.Linear or nn.Conv2d whose forward is replaced; its weight/bias slots (None: unowned)."""

    name: str
    module: nn.Module
    weight: _Sliced | None = None
    bias: _Sliced | None = None


def _functorch_active() -> bool:
    """True inside a torch.func transform (vmap, grad, jacrev, ...). There is no public query for
    this; if a torch upgrade removes the private one, fail loudly rather than silently give the
    mNTK partial gradients (tests/test_backward.py covers it)."""
    return bool(torch._C._are_functorch_transforms_active())


class PartialBackward:
    """The partial backward installed on one model. Use `install_partial_backward` to create it."""

    def __init__(self, model: nn.Module, partition: Partition):
        params = dict(model.named_parameters())
        partition.check(params)
        self.model, self.partition = model, partition
        self._disabled = False
        self._installed = True
        self._active = torch.ones(len(partition), dtype=torch.bool)
        self._removed = torch.zeros(len(partition), dtype=torch.bool)
        self._requires_grad = {n: params[n].requires_grad for n in partition.param_names}
        self._whole: dict[str, tuple[nn.Parameter, int]] = {}
        self._sliced: dict[str, _Sliced] = {}
        self._layers: dict[str, _Layer] = {}
        self._hooks: list = []
        dims = {s.param: s.dim for m in partition.modules for s in m.slices}  # one dim per parameter
        for name in partition.param_names:
            p = params[name]
            own = partition.owner_index(name, p.shape)
            dim = dims[name]
            if dim is None:
                self._whole[name] = (p, int(own.reshape(-1)[0]))
                continue
            slot = _Sliced(name, p, dim, own.reshape(-1).clone(), how="zero")
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            if self._can_skip(parent, attr, dim, name):
                slot.how = "skip"
                layer = self._layers.setdefault(parent_name, _Layer(parent_name, parent))
                setattr(layer, attr, slot)
            else:
                self._hooks.append(p.register_hook(self._zero_hook(slot)))
            self._sliced[name] = slot
        for layer in self._layers.values():
            if "forward" in vars(layer.module):
                raise RuntimeError(
                    f"partial backward: {layer.name} already has an instance-level forward "
                    "(installed twice, or patched by someone else); remove that first"
                )
            layer.module.forward = types.MethodType(self._make_forward(layer), layer.module)

    # ------------------------------------------------------------------------------ setup
    @staticmethod
    def _can_skip(parent: nn.Module, attr: str, dim: int, name: str) -> bool:
        """Whether slices of `parent.attr` along `dim` can be skipped by a custom function."""
        if type(parent) is nn.Linear:
            return attr == "weight" and dim in (0, 1) or attr == "bias" and dim == 0
        if type(parent) is nn.Conv2d:
            if dim != 0:
                raise ValueError(f"partial backward: {name} is sliced along dim {dim}; conv filters are output channels (dim 0)")
            if parent.groups != 1 or parent.padding_mode != "zeros" or isinstance(parent.padding, str):
                raise ValueError(
                    f"partial backward: conv {name} has groups={parent.groups}, padding_mode={parent.padding_mode!r}, "
                    f"padding={parent.padding!r}; only groups=1 with numeric zero padding is supported"
                )
            return True
        return False

    def _zero_hook(self, slot: _Sliced):
        def hook(grad: torch.Tensor) -> torch.Tensor | None:
            if self._disabled or slot.mask is None:
                return None
            return grad * slot.mask.to(grad.device, grad.dtype)

        return hook

    def _make_forward(self, layer: _Layer):
        pb, w, b = self, layer.weight, layer.bias
        plain = type(layer.module).forward

        def partial(w_slot):
            return w_slot is not None and w_slot.mode == "some" and w_slot.param.requires_grad

        def forward(module, x):
            if pb._disabled:
                return plain(module, x)
            dev = module.weight.device  # indices follow the model if it moved after set_active
            weight, bias = module.weight, module.bias
            removing = (w is not None and w.keep is not None) or (b is not None and b.keep is not None)
            if removing:  # pruned heads removed: the kept rows / columns only (Linear only)
                if w is not None and w.keep is not None:
                    weight = weight.index_select(w.dim, w.keep.to(dev))
                if b is not None and b.keep is not None:
                    bias = bias.index_select(0, b.keep.to(dev))
            # Plain op when nothing is partial: autograd (and the fused native backward) then
            # handle whole-tensor freezing by requires_grad alone.
            if not (partial(w) or partial(b)) or _functorch_active():
                return torch.nn.functional.linear(x, weight, bias) if removing else plain(module, x)
            w_idx = w.idx.to(dev) if partial(w) else None
            b_idx = b.idx.to(dev) if partial(b) else None
            if isinstance(module, nn.Conv2d):
                conv = (module.stride, module.padding, module.dilation)
                return PartialConv2d.apply(x, weight, bias, w_idx, b_idx, *conv)
            return PartialLinear.apply(x, weight, bias, w.dim if w is not None else 0, w_idx, b_idx)

        return forward

    # ------------------------------------------------------------------------------ per step
    @property
    def active(self) -> torch.Tensor:
        """The current per-module active mask (a copy)."""
        return self._active.clone()

    def set_active(self, active: torch.Tensor) -> None:
        """Freeze every module i with `active[i]` False for the following forward/backward passes.
        `active` is `Decision.active`: for MAT the information modules I (Algorithm 1, line 14),
        the only ones whose gradient line 17 uses."""
        if not self._installed:
            raise RuntimeError("partial backward: set_active() after remove()")
        if not isinstance(active, torch.Tensor) or active.dtype != torch.bool or active.shape != (len(self.partition),):
            got = f"{active.dtype} {tuple(active.shape)}" if isinstance(active, torch.Tensor) else type(active).__name__
            raise ValueError(f"partial backward: expected a bool tensor of shape ({len(self.partition)},), got {got}")
        active = active.detach().to("cpu")
        if torch.equal(active, self._active):
            return
        self._active = active.clone()
        if not self._disabled:
            self._apply()

    @property
    def removed(self) -> torch.Tensor:
        """The per-module mask of modules removed from the computation (a copy)."""
        return self._removed.clone()

    def set_removed(self, removed: torch.Tensor) -> None:
        """Remove the modules with `removed[i]` True from the forward and backward passes (pruned
        heads; module docstring). Removed modules must be frozen (`set_active` False) from then on;
        their slices should hold zeros, so that `disabled()` computes the same function."""
        if not self._installed:
            raise RuntimeError("partial backward: set_removed() after remove()")
        n = len(self.partition)
        if not isinstance(removed, torch.Tensor) or removed.dtype != torch.bool or removed.shape != (n,):
            got = f"{removed.dtype} {tuple(removed.shape)}" if isinstance(removed, torch.Tensor) else type(removed).__name__
            raise ValueError(f"partial backward: expected a bool tensor of shape ({n},) of removed modules, got {got}")
        removed = removed.detach().to("cpu")
        linear = {slot.name for lay in self._layers.values() if type(lay.module) is nn.Linear
                  for slot in (lay.weight, lay.bias) if slot is not None}
        for i in torch.nonzero(removed).flatten().tolist():
            m = self.partition.modules[i]
            bad = [s.param for s in m.slices if s.param not in linear]
            if bad:
                raise ValueError(
                    f"partial backward: module {m.name!r} cannot be removed from the computation: {bad[0]!r} is not "
                    "a row or column slice of an nn.Linear (only attention heads can be removed; zero the others)"
                )
        if torch.equal(removed, self._removed):
            return
        self._removed = removed.clone()
        if not self._disabled:
            self._apply()

    def _apply(self) -> None:
        table = torch.cat([self._active, torch.tensor([True])])  # index -1 (unowned) -> active
        gone = torch.cat([self._removed, torch.tensor([False])])  # index -1 (unowned) -> kept
        for name, (p, owner) in self._whole.items():
            p.requires_grad_(self._requires_grad[name] and bool(self._active[owner]))
        for name, s in self._sliced.items():
            kept = ~gone[s.owner]
            if not bool(kept.any()):  # every head of a layer pruned: attention needs one, so that
                kept = torch.ones_like(kept)  # layer keeps computing them, with their zero weights
            s.keep = None if bool(kept.all()) else kept.nonzero().flatten().to(s.param.device)
            act = table[s.owner][kept]  # active among the kept indices (a removed module is never active)
            n = int(act.sum())
            s.mode = "all" if n == act.numel() else "none" if n == 0 else "some"
            s.idx = act.nonzero().flatten().to(s.param.device) if s.mode == "some" else None
            if s.how == "zero" and s.mode == "some":
                view = [1] * s.param.dim()
                view[s.dim] = act.numel()
                s.mask = act.reshape(view).to(s.param.device, s.param.dtype)
            else:
                s.mask = None
            s.param.requires_grad_(self._requires_grad[name] and s.mode != "none")

    @contextlib.contextmanager
    def activated(self, active: torch.Tensor):
        """Temporarily use `active` (e.g. to count one step's FLOPs), then restore the previous set."""
        before = self.active
        self.set_active(active)
        try:
            yield self
        finally:
            self.set_active(before)

    @contextlib.contextmanager
    def disabled(self):
        """Temporarily behave as the plain model: every gradient computed, original requires_grad
        restored, hooks off. For measurements that need every module's gradient (the mNTK, SNIP)."""
        if self._disabled:
            yield self
            return
        self._disabled = True
        for name, p in self._params():
            p.requires_grad_(self._requires_grad[name])
        try:
            yield self
        finally:
            self._disabled = False
            self._apply()

    def _params(self):
        yield from ((n, p) for n, (p, _) in self._whole.items())
        yield from ((n, s.param) for n, s in self._sliced.items())

    def summary(self) -> dict[str, list[str]]:
        """Which parameters are handled how: "whole" (requires_grad per step), "skip" (weight
        gradient of active slices only), "zero" (computed in full, frozen slices zeroed)."""
        out: dict[str, list[str]] = {"whole": list(self._whole), "skip": [], "zero": []}
        for name, s in self._sliced.items():
            out[s.how].append(name)
        return out

    def remove(self) -> None:
        """Restore the plain model: original forwards, no hooks, original requires_grad."""
        if not self._installed:
            return
        for layer in self._layers.values():
            del layer.module.forward
        for h in self._hooks:
            h.remove()
        for name, p in self._params():
            p.requires_grad_(self._requires_grad[name])
        self._installed = False


def install_partial_backward(model: nn.Module, partition: Partition) -> PartialBackward:
    """Install the partial backward on `model` in place (parameter names and the forward output are
    unchanged). Every module starts active; call `set_active` each step and `remove()` to undo."""
    return PartialBackward(model, partition)
