"""How much compute a run has spent, as cumulative FLOP columns for metrics.csv and summary.json.

For now the forward pass is measured (once per batch shape, torch.utils.flop_counter) and the
backward pass is estimated as 2x the forward, as the paper does (Sec. 5 "Implementation Details",
after Rasley et al. 2020). So a frozen module saves nothing here yet: the meter keeps the interface
that a measured partial-backward meter will fill (`step(batch, decision)`), and the loop never looks
inside it.

Columns (cumulative over the run, training steps plus measurement overhead):
  flops_fwd            forward passes of the training steps (measured)
  flops_bwd            backward passes of the training steps (estimated: 2 x forward)
  flops_mntk           measurements taken for the policy or the figures: the mNTK's S per-sample
                       gradients and SNIP's minibatch, each costed as forward + backward (3 x forward)
  flops_total          flops_fwd + flops_bwd + flops_mntk
  flops_total_noemb    the same without the embedding layers' share (word/position embeddings; the
                       MLM decoder stays), as the paper's tables report "without embedding"
  flops_paper_estimate 3 x forward of the training steps without embeddings: the paper's estimator
                       (DeepSpeed profiler: forward counted, backward = 2 x forward)
FlopCounterMode counts matmul, convolution and attention only; an embedding lookup counts 0, so
the embedding share is 0 unless a model computes something inside an nn.Embedding module.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mat.partition import Partition
from mat.policies.base import Decision

BACKWARD_PER_FORWARD = 2  # the paper's (and DeepSpeed's) estimate of backward FLOPs
COLUMNS = ("flops_fwd", "flops_bwd", "flops_mntk", "flops_total", "flops_total_noemb", "flops_paper_estimate")


def _shape_key(inputs: torch.Tensor) -> str:
    return "x".join(str(d) for d in inputs.shape)


class ComputeMeter:
    """Cumulative FLOPs of a run. State is plain Python ints (checkpointed with the run)."""

    def __init__(self, model: nn.Module, partition: Partition, embedding_types: tuple[type, ...] = (nn.Embedding,)):
        self.model = model
        self.partition = partition
        root = type(model).__name__
        # FlopCounterMode names a module "<RootClass>.<qualified name>".
        self._embedding_names = [f"{root}.{n}" for n, m in model.named_modules() if isinstance(m, embedding_types)]
        self._forward: dict[str, list[int]] = {}  # batch shape -> [forward FLOPs, of which embeddings]
        self._fwd = self._fwd_noemb = self._measure = self._measure_noemb = 0

    # ------------------------------------------------------------------------------ measuring
    def forward_flops(self, inputs: torch.Tensor) -> tuple[int, int]:
        """(forward FLOPs, of which in embedding layers) for a batch of this shape.

        Measured the first time a shape is seen by an extra forward in eval mode without gradients:
        it draws no random numbers and updates no BatchNorm statistics, so counting never changes
        what the run computes (a resumed run stays bitwise equal to an uninterrupted one).
        """
        key = _shape_key(inputs)
        if key not in self._forward:
            was_training = self.model.training
            self.model.eval()
            try:
                with torch.no_grad(), FlopCounterMode(display=False) as counter:
                    self.model(inputs)
            finally:
                self.model.train(was_training)
            per_module = counter.get_flop_counts()
            emb = sum(sum(per_module.get(name, {}).values()) for name in self._embedding_names)
            self._forward[key] = [int(counter.get_total_flops()), int(emb)]
        total, emb = self._forward[key]
        return total, emb

    def step(self, inputs: torch.Tensor, decision: Decision) -> None:
        """Account one training step on `inputs` under `decision` (forward + estimated backward)."""
        total, emb = self.forward_flops(inputs)
        self._fwd += total
        self._fwd_noemb += total - emb

    def mntk(self, inputs: torch.Tensor, compute: Callable[[], Any] | None = None, key: str | None = None) -> Any:
        """Account a measurement on `inputs` (mNTK: one gradient per sample; SNIP: one minibatch),
        estimated as one forward and one backward per sample, i.e. (1 + 2) x the forward FLOPs of
        the batch; returns `compute()` (the measurement itself, run here) or None.

        `compute` and `key` let a measuring meter count the measurement's real work once per key
        (mat.flops.MeasuredComputeMeter has this signature); this estimator ignores `key`."""
        total, emb = self.forward_flops(inputs)
        self._measure += (1 + BACKWARD_PER_FORWARD) * total
        self._measure_noemb += (1 + BACKWARD_PER_FORWARD) * (total - emb)
        return compute() if compute is not None else None

    def totals(self) -> dict[str, int]:
        fwd, bwd = self._fwd, BACKWARD_PER_FORWARD * self._fwd
        bwd_noemb = BACKWARD_PER_FORWARD * self._fwd_noemb
        return {
            "flops_fwd": fwd,
            "flops_bwd": bwd,
            "flops_mntk": self._measure,
            "flops_total": fwd + bwd + self._measure,
            "flops_total_noemb": self._fwd_noemb + bwd_noemb + self._measure_noemb,
            "flops_paper_estimate": (1 + BACKWARD_PER_FORWARD) * self._fwd_noemb,
        }

    # ------------------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        return {
            "forward": {k: list(v) for k, v in self._forward.items()},
            "counters": [self._fwd, self._fwd_noemb, self._measure, self._measure_noemb],
        }

    def load_state_dict(self, state: dict) -> None:
        self._forward = {k: [int(a), int(b)] for k, (a, b) in state["forward"].items()}
        self._fwd, self._fwd_noemb, self._measure, self._measure_noemb = (int(v) for v in state["counters"])
