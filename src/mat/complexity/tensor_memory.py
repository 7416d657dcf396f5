"""Peak tensor memory of a piece of code, on any device, counted exactly and deterministically.

Table 6 compares the memory of the full NTK Gram with that of the L modular Grams. On CPU torch has
no allocator statistics (torch.cuda.max_memory_allocated exists only for CUDA), and the process's
resident size moves with the allocator's caching. So this counts what the complexity claim is about:
the bytes of tensor storage that the code allocates and keeps alive, through a TorchDispatchMode that
sees every ATen operation:

- an operation's output whose storage is not an input's storage is a new allocation (its bytes are
  added); an output sharing an input's storage is a view or an in-place result (nothing is added,
  but it keeps the storage alive if the storage was allocated inside the mode);
- a storage allocated inside the mode is released when the last tensor object referring to it is
  garbage collected (weakref finalizers on the tensors).

Tensors that existed before the mode (the inputs) are not counted; LAPACK/BLAS workspace outside
tensors is not counted; storages kept alive only by autograd's C++ graph are under-counted, so use it
on code running under `torch.no_grad()`.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


def _key(t: torch.Tensor) -> tuple[str, int]:
    return (str(t.device), t.untyped_storage().data_ptr())


class TensorMemory(TorchDispatchMode):
    """`with TensorMemory() as mem: ...` then `mem.peak` (bytes): the most tensor storage the code
    held at once, and `mem.current`: what it still holds."""

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[tuple[str, int], list[int]] = {}  # storage -> [bytes, tensor objects alive]
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {_key(t) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t, inputs)
        return out

    def _track(self, t: torch.Tensor, inputs: set) -> None:
        key = _key(t)
        entry = self._live.get(key)
        if entry is None:
            nbytes = t.untyped_storage().nbytes()
            if key in inputs or nbytes == 0:  # a view of (or in-place on) memory from before the mode
                return
            entry = self._live[key] = [nbytes, 0]
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(t, self._release, key)

    def _release(self, key: tuple[str, int]) -> None:
        entry = self._live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self._live[key]
            self.current -= entry[0]
