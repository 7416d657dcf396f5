"""Per-layer selections shared by the policies: random subsets, the protecting strategy, pruning.

The unit of selection and protection is a *protection unit*: the modules of one kind in one layer
(the (kind, layer) groups of `Partition.groups()`): "50% of each layer's heads", "at least one head
or expert in each layer" (Appendix B.1). One exception: when the modules ARE whole layers (kind
"layer"), each (kind, layer) group holds a single module, so a per-group rule would either select
every layer or none; there the unit is all layers of the kind together (protection then means "at
least one layer").
"""

from __future__ import annotations

import math

import torch

from mat.partition import Partition


def protection_units(partition: Partition) -> list[list[int]]:
    """Module positions grouped into the units described in the module docstring, in partition order."""
    units: dict[tuple, list[int]] = {}
    for (kind, layer), idx in partition.groups().items():
        key = (kind,) if kind == "layer" else (kind, layer)
        units.setdefault(key, []).extend(idx)
    return list(units.values())


def round_half_up(x: float) -> int:
    """0.5 * 5 -> 3, not Python's banker's 2: the count a reader computes by hand."""
    return int(math.floor(x + 0.5))


def count_of(fraction: float, n: int, protect: bool) -> int:
    """How many of `n` modules a `fraction` selects; at least one when protecting (and n > 0)."""
    k = min(n, round_half_up(fraction * n))
    return max(k, 1) if protect and n > 0 else k


def random_subset(partition: Partition, fraction: float, protect: bool, rng: torch.Generator) -> torch.Tensor:
    """Bool [n_modules]: `count_of(fraction)` modules drawn uniformly without replacement per unit."""
    chosen = torch.zeros(len(partition), dtype=torch.bool)
    for unit in protection_units(partition):
        k = count_of(fraction, len(unit), protect)
        perm = torch.randperm(len(unit), generator=rng)[:k]
        chosen[torch.tensor(unit, dtype=torch.long)[perm]] = True
    return chosen


def protect_best(
    partition: Partition, active: torch.Tensor, candidates: torch.Tensor, scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Protecting strategy ("at least one head or expert in each layer", Appendix B.1): every unit
    with no active module gets its candidate with the highest score (ties: the first in partition
    order). Returns (active, protected) where `protected` marks modules that are active only
    because of this rule."""
    active = active.clone()
    protected = torch.zeros_like(active)
    for unit in protection_units(partition):
        cands = [i for i in unit if bool(candidates[i])]
        if not cands or any(bool(active[i]) for i in unit):
            continue
        best = max(cands, key=lambda i: (float(scores[i]), -i))
        active[best] = True
        protected[best] = True
    return active, protected


def lowest_scoring(
    partition: Partition, scores: torch.Tensor, ratio: float, protect: bool, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Bool [n_modules]: per kind, the `ratio` fraction of modules with the lowest scores (ties: the
    first in partition order), ranked over ALL modules of the kind. When protecting, a module is
    skipped if removing it would empty its unit, so the count may fall short. `exclude` marks
    modules that can never be picked (already gone)."""
    n = len(partition)
    exclude = torch.zeros(n, dtype=torch.bool) if exclude is None else exclude
    picked = torch.zeros(n, dtype=torch.bool)
    unit_of = {}
    left = {}
    for u, unit in enumerate(protection_units(partition)):
        for i in unit:
            unit_of[i] = u
        left[u] = sum(1 for i in unit if not bool(exclude[i]))
    for kind in partition.kinds:
        idx = [i for i in partition.indices(kind) if not bool(exclude[i])]
        target = round_half_up(ratio * len(idx))
        count = 0
        for i in sorted(idx, key=lambda i: (float(scores[i]), i)):
            if count >= target:
                break
            if protect and left[unit_of[i]] <= 1:
                continue
            picked[i] = True
            left[unit_of[i]] -= 1
            count += 1
    return picked
