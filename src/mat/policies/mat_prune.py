"""MAT with pruning (Appendix B.2, Table 5).

MAT (Algorithm 1, see `mat.py`) plus pruning at `prune_epoch`: the `prune_ratio` fraction of each
kind with the lowest lambda_max at that epoch is removed from the forward pass ("we prune 50%
attention heads according to the ranking of lambda_max of head-based mNTKs at the 15th epoch";
ranking over all modules of a kind, never the last module of a layer when protecting). Then MAT
goes on with the survivors: pruned modules are left out of Eq. 4's min/max and are never active
again.

Choice where the paper is silent: when the prune epoch is not itself a MAT evaluation epoch and
warm-up is over, the modular policy (Eq. 4, Eq. 5, protecting strategy) is re-applied to the
survivors with the prune epoch's eigenvalues, so the threshold reflects the modules that still
exist and every layer keeps an updated module; the temporal policy (Eq. 6) keeps its own schedule
and does not count this as an evaluation. When the prune epoch is an evaluation epoch, pruning
comes first and the evaluation then runs on the survivors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mat.policies.base import Decision
from mat.policies.config import integer, number
from mat.policies.groups import lowest_scoring
from mat.policies.mat import MATConfig, MATPolicy
from mat.policies.registry import register_method


@dataclass(frozen=True)
class MATPruneConfig(MATConfig):
    prune_ratio: float = number(0.5, lo=0.0, hi=1.0, lo_open=True, hi_open=True)  # of each kind, removed
    prune_epoch: int = integer(14, lo=0)  # "at the 15th epoch" (B.2), 0-based; its mNTK ranks the modules


@register_method("mat_prune", config=MATPruneConfig, label="MAT + pruning", pruning_label="MAT")
class MATPrunePolicy(MATPolicy):
    def __init__(self, *args, prune_ratio: float, prune_epoch: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prune_ratio = prune_ratio
        self.prune_epoch = prune_epoch
        self.pruned_done = False

    def _needs_mntk(self, epoch: int) -> bool:
        return super()._needs_mntk(epoch) or (epoch == self.prune_epoch and not self.pruned_done)

    def _on_measurement(self, epoch: int, eigs: dict[int, torch.Tensor], lam: torch.Tensor) -> None:
        if epoch == self.prune_epoch and not self.pruned_done:
            self.pruned = lowest_scoring(self.partition, lam, self.prune_ratio, self.protect)
            self.pruned_done = True
            self.active = self.active & ~self.pruned
            for i in torch.nonzero(self.pruned).flatten().tolist():
                eigs.pop(i)
        if self.is_evaluation_epoch(epoch):
            self._evaluate(epoch, eigs, lam, temporal=True)
        elif self.t >= 0:
            self._evaluate(epoch, eigs, lam, temporal=False)

    def _decision(self, step: int) -> Decision:
        return Decision(self.active.clone(), torch.ones(self.n), pruned=self.pruned.clone())

    def _hyper(self) -> dict:
        return {**super()._hyper(), "prune_ratio": self.prune_ratio, "prune_epoch": self.prune_epoch}

    def _state(self) -> dict:
        return {**super()._state(), "pruned_done": self.pruned_done}

    def _load_state(self, state: dict) -> None:
        super()._load_state(state)
        self.pruned_done = state["pruned_done"]
