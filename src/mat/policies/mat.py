"""Modular Adaptive Training (paper Section 3, Algorithm 1).

Timeline (0-based epochs). Before `start_epoch` (warm-up) every module is trained. At
`start_epoch` and then every `interval` epochs, the policy asks for the mNTK eigenvalues of every
module (`wants(epoch) == {"mntk"}`), and `observe` re-decides which modules are updated; that set is
then fixed until the next evaluation (Algorithm 1, lines 15-19). Evaluation t = 0 is the one at
`start_epoch`, t = 1 the next, and so on.

At every evaluation:
- Modular policy, Eq. 4 (Algorithm 1, line 11): lambda_alpha = min + alpha * (max - min) over ALL
  eigenvalues of all mNTKs of one module KIND. Heads and experts (Switch) get separate thresholds
  with their own alpha (Appendix B.1: alpha_h = 0.1, alpha_e = 0.2); pruned modules are left out.
- Eq. 5 (line 12): a module is information if lambda_max >= lambda_alpha, nuisance otherwise.
- Temporal policy, Eq. 6 (lines 8 and 13): Delta_t = |lambda_max_t - lambda_max_0|, where
  lambda_max_0 is measured at t = 0 (the end of warm-up, "its principal eigenvalue after warming up
  is recorded as the initial value"). Delta_1 is the first variation, so Eq. 6 can first be applied
  at t = 2: a module with |Delta_t - Delta_{t-1}| / Delta_1 < beta (beta per kind) is stopped FOR
  GOOD; it is never updated again, even when Eq. 5 would call it information later. Eq. 6 is applied
  to every module, information or nuisance, as line 13 takes the union over all of them.
  Guard for Delta_1 == 0 (the module's lambda_max came back exactly to lambda_max_0): the ratio is
  taken as 0 (stop) only if Delta_t == Delta_{t-1} as well (nothing has changed at all, so the
  module is as stalled as a module can be), and as +inf (keep going) otherwise, since any change
  is infinitely large relative to a zero initial variation.
- Line 14 plus the protecting strategy (Appendix B.1, "maintains the gradient of at least one head or
  expert in each layer"): updated = information and not stopped; then every layer (protection unit,
  see `groups.py`) left with no updated module gets its largest-lambda_max module that is not
  pruned, stopped by Eq. 6 or not (`protect_stopped: true`, the default). So with `protect: true` a
  layer never loses all its modules and the run goes to its step budget. `protect_stopped: false`
  is the other reading (only modules not stopped are protected): a layer whose modules all stopped
  stays frozen, and when every layer is, line 2 ends the run. A nuisance module that is not stopped
  may become information again at a later evaluation.
- Line 2: training ends (`finished()`) when no module is updated any more.

`evaluation_epochs` lists the epochs of the evaluations so far (t = 0, 1, ...): the run's summary
records it, since Eq. 6 acts only from the third evaluation on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from mat.partition import Partition
from mat.policies.base import Decision
from mat.policies.common import PolicyBase
from mat.policies.config import Protecting, flag, integer, per_kind
from mat.policies.groups import protect_best
from mat.policies.registry import register_method

_NAN = float("nan")

DEFAULT_ALPHA = {"head": 0.1, "expert": 0.2, "filter": 0.2, "layer": 0.1}  # Eq. 4, Appendix B.1
DEFAULT_BETA = {"head": 1.0e-3, "expert": 1.0e-3, "filter": 1.0e-6, "layer": 1.0e-3}  # Eq. 6


@dataclass(frozen=True)
class MATConfig(Protecting):
    """The paper's defaults (Appendix B.1): BERT-style MAT starts at the 5th epoch (0-based epoch 4)
    and re-evaluates every 8 epochs; alpha 0.1 for heads and layers, 0.2 for experts and filters;
    beta 1e-3, except 1e-6 for filters (VGG). alpha and beta: a scalar or a mapping kind -> value."""

    alpha: dict = per_kind(DEFAULT_ALPHA, hi=1.0)  # per kind, Eq. 4, in (0, 1)
    beta: dict = per_kind(DEFAULT_BETA, hi=float("inf"))  # per kind, Eq. 6, > 0
    # 0-based epochs: "starts from the 5th epoch and performs every 8 epochs" (B.1) is epoch 4, 12, ...
    # (the 1-based-index reading, start_epoch: 5, is one setting away)
    start_epoch: int = integer(4, lo=0)  # first mNTK evaluation = end of warm-up
    interval: int = integer(8, lo=1)  # epochs between mNTK evaluations
    # the protecting strategy may keep a module Eq. 6 stopped, so no layer empties (ours: the
    # paper's "at least one ... in each layer"); false: only modules not stopped (the other reading)
    protect_stopped: bool = flag(True)


@register_method("mat", config=MATConfig, label="MAT", pruning_label="MAT")
class MATPolicy(PolicyBase):
    def __init__(
        self,
        partition: Partition,
        seed: int,
        steps_per_epoch: int,
        alpha: Mapping[str, float],
        beta: Mapping[str, float],
        start_epoch: int,
        interval: int,
        protect: bool,
        protect_stopped: bool = True,
    ) -> None:
        super().__init__(partition, seed, steps_per_epoch)
        for label, table in (("alpha", alpha), ("beta", beta)):
            missing = [k for k in partition.kinds if k not in table]
            if missing:
                raise ValueError(f"mat: {label} has no value for module kind {missing[0]!r} of the partition")
        self.alpha = {k: float(alpha[k]) for k in partition.kinds}
        self.beta = {k: float(beta[k]) for k in partition.kinds}
        self.start = start_epoch
        self.interval = interval
        self.protect = protect
        self.protect_stopped = protect_stopped
        n = self.n
        self._beta_vec = torch.tensor([self.beta[m.kind] for m in partition.modules], dtype=torch.float64)
        # Algorithm 1, line 1: I = M, N = {} -- everything trains during warm-up.
        self.active = torch.ones(n, dtype=torch.bool)
        self.pruned = torch.zeros(n, dtype=torch.bool)  # only mat_prune ever sets this
        self.information = torch.zeros(n, dtype=torch.bool)  # Eq. 5 at the last evaluation
        self.stopped = torch.zeros(n, dtype=torch.bool)  # Eq. 6: stopped for good
        self.stopped_epoch = torch.full((n,), -1, dtype=torch.long)
        self.protected = torch.zeros(n, dtype=torch.bool)  # active only by the protecting strategy
        self.lam = torch.full((n,), _NAN, dtype=torch.float64)  # lambda_max at the last evaluation
        self.lam0 = torch.full((n,), _NAN, dtype=torch.float64)  # lambda_max_0 (t = 0)
        self.delta = torch.full((n,), _NAN, dtype=torch.float64)  # Delta_t of the last evaluation
        self.delta1 = torch.full((n,), _NAN, dtype=torch.float64)  # Delta_1
        self.ratio = torch.full((n,), _NAN, dtype=torch.float64)  # last Eq. 6 left-hand side
        self.t = -1  # index of the last evaluation; -1 before the first
        self.evaluation_epochs: list[int] = []  # epoch of evaluation t, for t = 0..self.t
        self.thresholds: dict[str, float] = {}  # lambda_alpha per kind at the last evaluation
        self.observed = -1  # last epoch whose measurement was received

    # ------------------------------------------------------------------ schedule
    def is_evaluation_epoch(self, epoch: int) -> bool:
        return epoch >= self.start and (epoch - self.start) % self.interval == 0

    def _needs_mntk(self, epoch: int) -> bool:
        return self.is_evaluation_epoch(epoch)

    def wants(self, epoch: int) -> set[str]:
        if epoch <= self.observed or self.finished():
            return set()
        return {"mntk"} if self._needs_mntk(epoch) else set()

    def observe(self, epoch: int, name: str, values) -> None:
        if name != "mntk":
            raise ValueError(f"policy {self.method!r} takes only 'mntk' measurements, got {name!r}")
        if "mntk" not in self.wants(epoch):
            raise ValueError(
                f"policy {self.method!r}: no mNTK was asked for at epoch {epoch} "
                f"(evaluations at {self.start} + k*{self.interval}; last measurement at epoch {self.observed})"
            )
        eigs = self._parse(values)
        lam = torch.full((self.n,), _NAN, dtype=torch.float64)
        for i, e in eigs.items():
            lam[i] = e.max()  # lambda_max: the principal eigenvalue
        self._on_measurement(epoch, eigs, lam)
        self.observed = epoch

    def _on_measurement(self, epoch: int, eigs: dict[int, torch.Tensor], lam: torch.Tensor) -> None:
        self._evaluate(epoch, eigs, lam, temporal=True)

    def _parse(self, values) -> dict[int, torch.Tensor]:
        """{module name: eigenvalues} -> {position: float64 eigenvalues} for every module not pruned."""
        if not isinstance(values, Mapping):
            raise ValueError(f"mat: the 'mntk' measurement must map module names to eigenvalues, got {type(values).__name__}")
        pos = {name: i for i, name in enumerate(self.partition.names)}
        unknown = sorted(set(values) - set(pos))
        if unknown:
            raise ValueError(f"mat: mNTK given for {unknown[0]!r}, which is not a module of the partition")
        out = {}
        for name, i in pos.items():
            if bool(self.pruned[i]):
                continue
            if name not in values:
                raise ValueError(f"mat: no mNTK eigenvalues for module {name!r} (Algorithm 1 line 5 needs every module)")
            e = torch.as_tensor(values[name]).detach().to("cpu", torch.float64).reshape(-1)
            if e.numel() == 0 or not bool(torch.isfinite(e).all()):
                raise ValueError(f"mat: eigenvalues of module {name!r} are empty or not finite: {e[:5].tolist()}")
            out[i] = e
        return out

    # ------------------------------------------------------------------ Algorithm 1, lines 3-14
    def _evaluate(self, epoch: int, eigs: dict[int, torch.Tensor], lam: torch.Tensor, temporal: bool) -> None:
        """One evaluation. `temporal=False` re-applies only the modular policy (used by mat_prune
        right after pruning, off the evaluation schedule); it does not advance t."""
        live = ~self.pruned
        self.lam = torch.where(live, lam, _NAN)

        # Eq. 4 (Algorithm 1, lines 9 and 11): one threshold per module kind, over all eigenvalues
        self.thresholds = {}
        for kind in self.partition.kinds:
            idx = [i for i in self.partition.indices(kind) if bool(live[i])]
            if not idx:
                continue
            every = torch.cat([eigs[i] for i in idx])
            lo, hi = float(every.min()), float(every.max())
            self.thresholds[kind] = lo + (hi - lo) * self.alpha[kind]
        thr = torch.tensor([self.thresholds.get(m.kind, _NAN) for m in self.partition.modules], dtype=torch.float64)

        # Eq. 5 (Algorithm 1, line 12): information vs nuisance modules
        self.information = live & (self.lam >= thr)

        if temporal:
            self.t += 1
            self.evaluation_epochs.append(epoch)
            if self.t == 0:
                self.lam0 = self.lam.clone()  # lambda_max(Theta_0): recorded after warm-up
            delta = (self.lam - self.lam0).abs()  # Algorithm 1, line 8: Delta_t
            if self.t == 1:
                self.delta1 = delta.clone()
            if self.t >= 2:
                # Eq. 6 (Algorithm 1, line 13): |Delta_t - Delta_{t-1}| / Delta_1 < beta -> stop for good
                change = (delta - self.delta).abs()
                ratio = change / self.delta1
                zero = self.delta1 == 0  # guard: see module docstring
                ratio = torch.where(zero, torch.where(change == 0, 0.0, math.inf), ratio)
                self.ratio = torch.where(live, ratio, _NAN)
                newly = live & ~self.stopped & (self.ratio < self._beta_vec)
                self.stopped = self.stopped | newly
                self.stopped_epoch[newly] = epoch
            self.delta = delta

        # Algorithm 1, line 14 (I = M - N), then the protecting strategy (Appendix B.1)
        candidates = live & ~self.stopped
        active = self.information & candidates
        if self.protect:
            pool = live if self.protect_stopped else candidates
            active, self.protected = protect_best(self.partition, active, pool, self.lam)
        else:
            self.protected = torch.zeros(self.n, dtype=torch.bool)
        self.active = active

    # ------------------------------------------------------------------ decisions
    def _decision(self, step: int) -> Decision:
        pruned = self.pruned.clone() if bool(self.pruned.any()) else None
        return Decision(self.active.clone(), torch.ones(self.n), pruned=pruned)

    def finished(self) -> bool:
        """Algorithm 1, line 2: stop when the set of information modules is empty."""
        return not bool(self.active.any())

    def report(self) -> dict:
        """The last evaluation, for logging: `thresholds` (lambda_alpha per kind, Eq. 4), `evaluation`
        (t; -1 before the first), `evaluation_epochs` (the epoch of each t), `measured_at` (epoch of
        the eigenvalues) and `modules`, one row per module with lambda_max, Delta (Eq. 6), the Eq. 5
        split, the stop status and the plan."""
        rows = []
        for i, m in enumerate(self.partition.modules):
            rows.append(
                {
                    "module": m.name,
                    "kind": m.kind,
                    "layer": m.layer,
                    "threshold": self.thresholds.get(m.kind, _NAN),
                    "lambda_max": float(self.lam[i]),
                    "lambda_max_0": float(self.lam0[i]),
                    "delta": float(self.delta[i]),
                    "delta_1": float(self.delta1[i]),
                    "eq6_ratio": float(self.ratio[i]),
                    "information": bool(self.information[i]),
                    "stopped": bool(self.stopped[i]),
                    "stopped_epoch": int(self.stopped_epoch[i]),
                    "protected": bool(self.protected[i]),
                    "active": bool(self.active[i]),
                    "lr_scale": 1.0,
                    "pruned": bool(self.pruned[i]),
                }
            )
        return {
            "method": self.method,
            "epoch": self.epoch,
            "evaluation": self.t,
            "evaluation_epochs": list(self.evaluation_epochs),
            "measured_at": self.observed,
            "thresholds": dict(self.thresholds),
            "modules": rows,
        }

    # ------------------------------------------------------------------ state
    _TENSORS = ("active", "pruned", "information", "stopped", "stopped_epoch", "protected",
                "lam", "lam0", "delta", "delta1", "ratio")

    def _hyper(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta, "start_epoch": self.start,
                "interval": self.interval, "protect": self.protect, "protect_stopped": self.protect_stopped}

    def _state(self) -> dict:
        state = {name: getattr(self, name) for name in self._TENSORS}
        state.update(t=self.t, evaluation_epochs=list(self.evaluation_epochs), thresholds=dict(self.thresholds),
                     observed=self.observed, hyper=self._hyper())
        return state

    def _load_state(self, state: dict) -> None:
        if state["hyper"] != self._hyper():
            raise ValueError(f"policy state: {self.method} settings {state['hyper']} differ from this policy's {self._hyper()}")
        for name in self._TENSORS:
            setattr(self, name, state[name])
        self.t = state["t"]
        self.evaluation_epochs = list(state["evaluation_epochs"])
        self.thresholds = dict(state["thresholds"])
        self.observed = state["observed"]
