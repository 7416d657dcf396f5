"""Module partitions: a model's named modules as lists of parameter slices.

One partition is read by everything that reasons about modules: the mNTK (`mat.ntk`), the
training policies (`mat.policies`), the masked optimizer step (`mat.optim`), the partial backward
(`mat.backward`) and the figures. A module (Definition 1 of the paper: theta^l) is a named set of
slices of the model's parameters: an attention head is rows of the q/k/v projections plus columns
of the output projection; an expert is whole tensors; a conv filter is one output channel of a
kernel plus its bias and BatchNorm scale/shift; a layer is whole tensors.

Parameters (or parts of parameters) that no module owns are "always trained".

Architecture-specific builders (`heads_of_bert`, ...) live in `mat.models`; this file only holds
the data structure and the operations on it, so it stays independent of any model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch

KINDS = ("head", "expert", "filter", "layer")


@dataclass(frozen=True)
class ParamSlice:
    """A contiguous slice `[start, stop)` of one parameter along `dim`; `dim=None` is the whole tensor."""

    param: str  # name as in model.named_parameters()
    dim: int | None = None
    start: int = 0
    stop: int = 0

    def index(self, ndim: int) -> tuple[slice, ...]:
        """Indexing tuple selecting this slice from a tensor with `ndim` dimensions."""
        if self.dim is None:
            return (slice(None),) * ndim
        idx = [slice(None)] * ndim
        idx[self.dim] = slice(self.start, self.stop)
        return tuple(idx)

    def numel(self, shape: torch.Size) -> int:
        if self.dim is None:
            return int(torch.Size(shape).numel())
        rest = torch.Size(shape).numel() // shape[self.dim]
        return int(rest * (self.stop - self.start))


@dataclass(frozen=True)
class Module:
    """One module theta^l: a name, a kind, its place in the network, and its slices."""

    name: str  # e.g. "layer3.head7", "layer1.expert2", "conv5.filter31", "layer2"
    kind: str  # one of KINDS
    layer: int  # index of the layer (transformer block, or conv layer) the module sits in
    index: int  # index of the module within its layer and kind
    slices: tuple[ParamSlice, ...]


@dataclass(frozen=True)
class Partition:
    """An ordered tuple of disjoint modules. Module i is row i of every per-module tensor."""

    modules: tuple[Module, ...]
    _owners: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [m.name for m in self.modules]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"partition: duplicate module names {dup}")
        for m in self.modules:
            if m.kind not in KINDS:
                raise ValueError(f"partition: module {m.name!r} has kind {m.kind!r}; expected one of {KINDS}")
        # Owner maps: for each parameter, along which dim it is sliced and which module owns each
        # index along that dim (-1: nobody, always trained). A parameter is sliced along one dim only.
        owners: dict[str, tuple[int | None, list]] = {}
        for i, m in enumerate(self.modules):
            for s in m.slices:
                dim, spans = owners.setdefault(s.param, (s.dim, []))
                if dim != s.dim:
                    raise ValueError(
                        f"partition: parameter {s.param!r} is sliced along dim {dim} and dim {s.dim}; "
                        "a parameter may be sliced along one dimension only"
                    )
                spans.append((s.start, s.stop, i))
        for param, (dim, spans) in owners.items():
            if dim is None and len(spans) > 1:
                mods = [self.modules[i].name for _, _, i in spans]
                raise ValueError(f"partition: parameter {param!r} is owned whole by several modules {mods}")
            spans.sort()
            for (a0, a1, ia), (b0, b1, ib) in zip(spans, spans[1:]):
                if b0 < a1:
                    raise ValueError(
                        f"partition: slices of {param!r} overlap: {self.modules[ia].name} [{a0},{a1}) "
                        f"and {self.modules[ib].name} [{b0},{b1})"
                    )
        self._owners.update(owners)

    # ----------------------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self.modules)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.modules]

    @property
    def kinds(self) -> list[str]:
        """The kinds present, in order of first appearance."""
        return list(dict.fromkeys(m.kind for m in self.modules))

    @property
    def param_names(self) -> list[str]:
        """Parameters that at least one module owns a slice of."""
        return list(self._owners)

    def indices(self, kind: str | None = None, layer: int | None = None) -> list[int]:
        """Positions of the modules of a kind (and layer), in partition order."""
        return [
            i
            for i, m in enumerate(self.modules)
            if (kind is None or m.kind == kind) and (layer is None or m.layer == layer)
        ]

    def groups(self) -> dict[tuple[str, int], list[int]]:
        """Module positions grouped by (kind, layer): the unit of the protecting strategy."""
        out: dict[tuple[str, int], list[int]] = {}
        for i, m in enumerate(self.modules):
            out.setdefault((m.kind, m.layer), []).append(i)
        return out

    def sizes(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Number of parameter elements in each module."""
        return torch.tensor(
            [sum(s.numel(params[s.param].shape) for s in m.slices) for m in self.modules], dtype=torch.long
        )

    def check(self, params: Mapping[str, torch.Tensor]) -> None:
        """Raise a clear error if a slice names a missing parameter or lies outside its tensor."""
        for m in self.modules:
            for s in m.slices:
                if s.param not in params:
                    raise KeyError(f"partition: module {m.name!r} names parameter {s.param!r}, which the model lacks")
                if s.dim is not None:
                    shape = params[s.param].shape
                    if not (0 <= s.dim < len(shape)) or not (0 <= s.start < s.stop <= shape[s.dim]):
                        raise ValueError(
                            f"partition: module {m.name!r} slice [{s.start},{s.stop}) along dim {s.dim} "
                            f"does not fit {s.param!r} of shape {tuple(shape)}"
                        )

    # ----------------------------------------------------------------------------- per-element views
    def owner_index(self, param: str, shape: torch.Size, device=None) -> torch.Tensor | None:
        """Module position owning each element of `param`, shaped to broadcast against it.

        Returns None for a parameter no module touches. -1 marks elements no module owns.
        """
        if param not in self._owners:
            return None
        dim, spans = self._owners[param]
        if dim is None:
            return torch.tensor(spans[0][2], device=device).reshape((1,) * len(shape))
        own = torch.full((shape[dim],), -1, dtype=torch.long)
        for start, stop, i in spans:
            own[start:stop] = i
        view = [1] * len(shape)
        view[dim] = shape[dim]
        return own.reshape(view).to(device)

    def expand(
        self, values: torch.Tensor, params: Mapping[str, torch.Tensor], fill: float | bool
    ) -> dict[str, torch.Tensor]:
        """Spread a per-module vector over the elements of every owned parameter.

        `values[i]` is module i's value; elements no module owns get `fill`. The result for each
        parameter broadcasts against it (it is not materialised at full size).
        """
        if values.shape != (len(self.modules),):
            raise ValueError(f"partition: expected {len(self.modules)} per-module values, got shape {tuple(values.shape)}")
        out: dict[str, torch.Tensor] = {}
        for name in self._owners:
            p = params[name]
            own = self.owner_index(name, p.shape, device=values.device)
            table = torch.cat([values, torch.tensor([fill], dtype=values.dtype, device=values.device)])
            out[name] = table[own]  # index -1 picks `fill`
        return out

    def gather(self, tensors: Mapping[str, torch.Tensor], module: int, batch_dims: int = 0) -> torch.Tensor:
        """Concatenate module `module`'s slices of `tensors`, flattened to `[*batch, numel]`.

        With `batch_dims=1` the tensors carry a leading sample dimension (per-sample gradients).
        """
        parts = []
        for s in self.modules[module].slices:
            t = tensors[s.param]
            idx = (slice(None),) * batch_dims + s.index(t.dim() - batch_dims)
            parts.append(t[idx].reshape(*t.shape[:batch_dims], -1))
        return torch.cat(parts, dim=-1)


def layer_partition(model: torch.nn.Module, prefixes: Iterable[str], kind: str = "layer") -> Partition:
    """Whole layers as modules: every parameter under `prefixes[i]` belongs to module `layer{i}`."""
    params = dict(model.named_parameters())
    mods = []
    for i, prefix in enumerate(prefixes):
        names = [n for n in params if n.startswith(prefix.rstrip(".") + ".")]
        if not names:
            raise KeyError(f"partition: no parameters under {prefix!r}")
        mods.append(Module(f"layer{i}", kind, i, 0, tuple(ParamSlice(n) for n in names)))
    return Partition(tuple(mods))
