"""Random streams derived from (run seed, purpose, position), so that a resumed run draws exactly
what an uninterrupted one draws without having to carry generator states around.

Each purpose gets its own stream: the epoch's permutation, a step's MLM masks or augmentation, the
S inputs of an epoch's mNTK, the fixed evaluation masks. Changing how one of them is used never
shifts the others.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*keys: object) -> int:
    """A 63-bit seed from any printable keys (stable across processes and Python versions)."""
    digest = hashlib.sha256(repr(tuple(keys)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(*keys: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded by `derive_seed(*keys)`."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(*keys))
    return gen
