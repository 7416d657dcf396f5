"""Measured FLOPs: the work that really ran, forward, backward and mNTK, each its own column.

The paper (Sec. 5 "Implementation Details") counts forward FLOPs with the DeepSpeed profiler and
estimates backward as 2x forward (Rasley et al. 2020). That estimator cannot see what freezing a
module saves, yet the headline ("MAT nearly halves the computational cost") is a FLOPs claim. So
here FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` over the actual forward
and the actual (partial, `mat.backward`) backward, and the paper's accounting is reported beside
it (`flops_paper_estimate`), applied honestly to freezing: measured forward + 2 x (measured
forward minus the forward FLOPs of the modules NOT updated in that step -- a frozen head's
projections and attention core, a frozen filter's conv, a frozen expert's FFN; `mat.module_flops`).
That is the paper's "a lighter back propagation pass only for appropriate subsets of the modules"
read most generously: a frozen module costs no backward at all (the measured backward still pays
for the input gradients that flow through frozen modules to the layers below). The estimator as
DeepSpeed's profiler literally gives it, 3 x forward whatever is frozen, is `flops_paper_dense`.

What is counted: matmuls, convolutions and attention kernels (FlopCounterMode's formulas; 2 FLOPs
per multiply-add). Elementwise ops, norms, softmax, bias adds and embedding lookups count 0. On
CPU, `F.scaled_dot_product_attention` runs `_scaled_dot_product_flash_attention_for_cpu`, for
which torch registers no formula; `flop_counter()` adds one (forward 4*B*h*Lq*Lk*d as for the
other sdpa kernels; backward counts the score recomputation too, as torch does for flash kernels).

"Without embedding" (paper Tables 1-2: "FLOPs is measured per GPU without embedding"): the FLOPs
of embedding modules (`nn.Embedding`: word, position, token-type, T5 relative-position buckets)
are excluded. A lookup is no arithmetic, and its backward is a scatter-add with no FLOP formula,
so both count 0 and `flops_total_noemb` equals `flops_total` for this project's models. The BERT
MLM decoder is NOT excluded, although its weight is tied to the word embedding: it is a real
hidden x vocab matmul, and the paper's tool (DeepSpeed's profiler, which patches `F.linear` and
`F.embedding` and counts a lookup as 0) counts it too; "without embedding" is read as "without
the embedding lookups". (The other reading, excluding every use of the embedding matrix as in
transformers' `num_parameters(exclude_embeddings=True)`, would also drop the decoder; we do not.)

Cost of counting: the step counts are cached per (batch shape, dtype, device, set of active
modules, set of pruned heads removed from the computation) -- FLOPs depend on nothing else -- and each new key costs one extra forward+backward
in eval mode (no dropout draws, no BatchNorm statistics, no `.grad` accumulation), so counting
never changes what the run computes. Dropout and BatchNorm count 0 FLOPs, so eval mode counts the
same work as train mode (one caveat: with `attn_implementation: sdpa` and attention dropout, torch
may pick another attention kernel in train mode; the project's default is eager attention).
One count costs about 1-2 training steps (`count_seconds` in benchmarks/results/partial_backward.csv),
so counting stays under 5% of training time when a key is reused for 40 steps or more. Policies
change their active set once per epoch or less often (Rand, MAT) or cycle between two sets
(Multirate), so that holds except for runs with very short epochs.
The mNTK is counted by running the actual mNTK computation under the counter once per key
(S and shape) and reusing that count for later evaluations.

Method versus instrumentation: a measurement the METHOD needs (MAT's mNTK evaluations, SNIP's
scores) is part of the method's computation (`flops_mntk`, inside `flops_total`). A measurement
taken only for the logs and figures (the layer-wise mNTK of Figures 2-3, the head mNTK of a vanilla
run for Figure 1) is instrumentation: it is counted in its own column, `flops_logging`, and never
in `flops_total`, so that logging more for a figure does not change any method's computation.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mat.module_flops import module_forward_flops
from mat.partition import Partition
from mat.policies.base import Decision

aten = torch.ops.aten

BACKWARD_PER_FORWARD = 2  # the paper's (and DeepSpeed's) estimate of backward FLOPs
COLUMNS = (
    "flops_fwd", "flops_bwd", "flops_mntk", "flops_total", "flops_total_noemb", "flops_paper_estimate",
    "flops_paper_dense", "flops_logging",
)
PURPOSES = ("method", "logging")  # who a measurement is for (module docstring)


# ---------------------------------------------------------------------------------- attention
def attention_flops(batch: int, heads: int, q_len: int, k_len: int, d_qk: int, d_v: int) -> int:
    """Forward FLOPs of softmax(Q K^T) V: two batched matmuls, 2*B*h*Lq*Lk*(d_qk + d_v)."""
    return 2 * batch * heads * q_len * k_len * (d_qk + d_v)


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    b, h, lq, d = query_shape
    return attention_flops(b, h, lq, key_shape[-2], d, value_shape[-1])


def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    # Flash backward: recompute Q K^T (1 matmul), then dV, dP, dQ, dK (4 matmuls).
    b, h, lq, d = query_shape
    lk, dv = key_shape[-2], value_shape[-1]
    return 2 * b * h * lq * lk * (d + dv + dv + d + d)


# Formulas torch lacks (torch 2.14: none for the CPU flash kernel), passed per counter so nothing
# global is modified.
EXTRA_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flop,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flop,
}


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode that also knows the CPU sdpa kernel."""
    return FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS)


# ---------------------------------------------------------------------------------- counting
def embedding_module_names(model: nn.Module, types: tuple[type, ...] = (nn.Embedding,)) -> list[str]:
    """FlopCounterMode's names ("<RootClass>.<path>") of the outermost modules of `types`."""
    root, names = type(model).__name__, []
    for path, module in model.named_modules():
        if isinstance(module, types) and not any(path.startswith(n + ".") for n in names):
            names.append(path)
    return [f"{root}.{n}" for n in names]


def _share(counter: FlopCounterMode, names: list[str]) -> int:
    counts = counter.get_flop_counts()
    return int(sum(sum(counts.get(n, {}).values()) for n in names))


def _scalar_loss(model: nn.Module, out: Any) -> torch.Tensor:
    """A scalar whose backward reaches every output, plus the model's auxiliary loss if any (the
    backward FLOPs of matmuls do not depend on the loss's values, only on what needs gradients)."""
    out = getattr(out, "logits", out)  # a transformers ModelOutput
    outs = [t for t in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(t, torch.Tensor)]
    loss = torch.zeros(())
    for t in outs:
        if t.is_floating_point():
            loss = loss.to(t.device) + t.float().sum()
    aux = getattr(model, "aux_loss", None)
    if callable(aux):
        a = aux()
        if isinstance(a, torch.Tensor) and a.requires_grad:
            loss = loss + a.float()
    return loss


def count_step(model: nn.Module, inputs: torch.Tensor, embedding_names: list[str] = ()) -> dict[str, int]:
    """Count one forward and the backward it needs, as the model is configured now (requires_grad,
    partial backward), without changing any state: eval mode, gradients returned not accumulated.

    Returns {"fwd", "fwd_emb", "bwd", "bwd_emb", "fwd_modules"} (the *_emb parts: FLOPs inside
    embedding modules; fwd_modules: the forward's FLOPs per module name, "<RootClass>.<path>").
    """
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), flop_counter() as counter:
            out = model(inputs)
            loss = _scalar_loss(model, out)
            fwd, fwd_emb = counter.get_total_flops(), _share(counter, list(embedding_names))
            fwd_modules = {k: int(sum(v.values())) for k, v in counter.get_flop_counts().items() if k != "Global"}
            wrt = [p for p in model.parameters() if p.requires_grad]
            if isinstance(inputs, torch.Tensor) and inputs.requires_grad:
                wrt.append(inputs)
            if wrt and loss.requires_grad:
                torch.autograd.grad(loss, wrt, allow_unused=True)
            total, total_emb = counter.get_total_flops(), _share(counter, list(embedding_names))
    finally:
        model.train(was_training)
    return {"fwd": int(fwd), "fwd_emb": int(fwd_emb), "bwd": int(total - fwd), "bwd_emb": int(total_emb - fwd_emb),
            "fwd_modules": fwd_modules}


def _shape_key(inputs: torch.Tensor) -> str:
    return f"{'x'.join(str(d) for d in inputs.shape)}:{str(inputs.dtype).removeprefix('torch.')}:{inputs.device.type}"


def _active_key(active: torch.Tensor | None) -> str:
    """A compact, exact key for a bool mask: its bits packed into hex."""
    if active is None:
        return "all"
    bits = active.detach().to("cpu", torch.bool).flatten().tolist()
    value = sum(1 << i for i, b in enumerate(bits) if b)
    return f"{len(bits)}:{value:x}"


# ---------------------------------------------------------------------------------- the meter
class MeasuredComputeMeter:
    """Cumulative measured FLOPs of a run (the trainer's meter).

    `partial_backward`: the `mat.backward.PartialBackward` installed on `model`, if the trainer
    uses one; each step is then counted with the step's `Decision.active`. Without one, a step is
    counted with the backward the model does as its parameters stand (all requiring grad: a
    trainer that computes every gradient and masks the update does that work, whatever the
    decision), once per batch shape.

    Columns (cumulative; see `COLUMNS`):
      flops_fwd            forward passes of the training steps
      flops_bwd            backward passes of the training steps (measured, partial backward seen)
      flops_mntk           measurements the method needs (MAT's mNTK, SNIP's scores)
      flops_total          flops_fwd + flops_bwd + flops_mntk
      flops_total_noemb    the same without embedding lookups (equal for these models; see module doc)
      flops_paper_estimate the paper's accounting applied to freezing, training steps only, without
                           embeddings: per step, forward + 2 x (forward - forward of the modules
                           not updated in the step) (module docstring)
      flops_paper_dense    (1 + 2) x forward of the training steps without embeddings: the paper's
                           estimator as DeepSpeed gives it, blind to freezing
      flops_logging        measurements taken only for the logs and figures; NOT in flops_total
    """

    def __init__(
        self,
        model: nn.Module,
        partition: Partition,
        embedding_types: tuple[type, ...] = (nn.Embedding,),
        partial_backward=None,
    ):
        if partial_backward is not None and partial_backward.model is not model:
            raise ValueError("compute meter: partial_backward is installed on a different model")
        self.model, self.partition, self.partial_backward = model, partition, partial_backward
        self._embedding_names = embedding_module_names(model, embedding_types)
        self._steps: dict[str, list[int]] = {}  # key -> [fwd, fwd_emb, bwd, bwd_emb]
        self._measures: dict[str, list[int]] = {}  # key -> [total, emb]
        self._module_fwd: dict[str, list[int]] = {}  # shape key -> forward FLOPs of each partition module
        self._sum = {"fwd": 0, "fwd_emb": 0, "bwd": 0, "bwd_emb": 0, "mntk": 0, "mntk_emb": 0, "logging": 0, "paper": 0}

    # ------------------------------------------------------------------------------ steps
    def _step_counts(self, inputs: torch.Tensor, active: torch.Tensor | None) -> list[int]:
        pb = self.partial_backward
        if pb is None:
            active = None  # the decision does not change the work without a partial backward
        key = f"{_shape_key(inputs)}|{_active_key(active)}"
        if active is not None:
            key += self._removed_key()
        if key not in self._steps:
            if pb is None:
                ctx = contextlib.nullcontext()
            else:  # the step's active set, or everyone (forward_flops), then the previous set again
                ctx = pb.activated(active) if active is not None else pb.disabled()
            with ctx:
                c = count_step(self.model, inputs, self._embedding_names)
            self._steps[key] = [c["fwd"], c["fwd_emb"], c["bwd"], c["bwd_emb"]]
            self._module_fwd.setdefault(self._model_key(inputs), module_forward_flops(self.model, self.partition, c["fwd_modules"], self._removed()))
        return self._steps[key]

    def _removed_key(self) -> str:
        """'' or '|removed:...' while pruned heads are out of the computation (a smaller model)."""
        pb = self.partial_backward
        return f"|removed:{_active_key(pb.removed)}" if pb is not None and bool(pb.removed.any()) else ""

    def _removed(self) -> list[bool] | None:
        pb = self.partial_backward
        return None if pb is None else pb.removed.bool().tolist()

    def _model_key(self, inputs: torch.Tensor) -> str:
        """Batch shape and the model's current set of removed heads: what per-module forward
        FLOPs depend on (a removed head costs nothing, so it must not be subtracted again)."""
        return _shape_key(inputs) + self._removed_key()

    def module_forward(self, inputs: torch.Tensor) -> list[int]:
        """Forward FLOPs of each partition module for a batch of this shape (`mat.module_flops`)."""
        shape = self._model_key(inputs)
        if shape not in self._module_fwd:
            c = count_step(self.model, inputs, self._embedding_names)
            self._module_fwd[shape] = module_forward_flops(self.model, self.partition, c["fwd_modules"], self._removed())
        return self._module_fwd[shape]

    def frozen_forward(self, inputs: torch.Tensor, active: torch.Tensor | None) -> int:
        """Forward FLOPs of the modules NOT updated under `active` (0 when everyone is)."""
        if active is None:
            return 0
        per_module = torch.tensor(self.module_forward(inputs), dtype=torch.int64)
        frozen = ~active.detach().to("cpu", torch.bool).flatten()
        return int(per_module[frozen].sum())

    def forward_flops(self, inputs: torch.Tensor) -> tuple[int, int]:
        """(forward FLOPs, of which in embedding modules) for a batch of this shape."""
        fwd, fwd_emb, _, _ = self._step_counts(inputs, None)
        return fwd, fwd_emb

    def step(self, inputs: torch.Tensor, decision: Decision) -> None:
        """Account one training step on `inputs` under `decision` (forward + measured backward).
        Call it outside the step's own forward/backward (the count runs an extra pass on a miss)."""
        fwd, fwd_emb, bwd, bwd_emb = self._step_counts(inputs, decision.active)
        s = self._sum
        forward = fwd - fwd_emb
        s["paper"] += forward + BACKWARD_PER_FORWARD * max(forward - self.frozen_forward(inputs, decision.active), 0)
        s["fwd"] += fwd
        s["fwd_emb"] += fwd_emb
        s["bwd"] += bwd
        s["bwd_emb"] += bwd_emb

    # ------------------------------------------------------------------------------ measurements
    def mntk(
        self,
        inputs: torch.Tensor,
        compute: Callable[[], Any] | None = None,
        key: str | None = None,
        purpose: str = "method",
    ) -> Any:
        """Account one measurement taken on `inputs`, and return `compute()`'s result.

        `purpose`: "method" (the method needs it: `flops_mntk`, part of the total) or "logging"
        (only for logs and figures: `flops_logging`, outside the total).

        With `compute` (a zero-argument callable that runs the actual measurement, e.g. the mNTK's
        S per-sample gradients, Gram matrices and eigenvalues): the first call for a key runs it
        under the counter, later calls run it uncounted and add the cached count. The key is
        (`key`, shape of `inputs`): `key` names the measurement, the shape gives S and the length.
        Without `compute`: a forward plus a full backward of `inputs` is counted (every module
        active) -- exactly the cost of SNIP's minibatch gradient; returns None.

        A measurement needs every module's gradient, frozen or not, so with a partial backward
        attached it runs inside `partial_backward.disabled()` (the plain model).
        """
        if purpose not in PURPOSES:
            raise ValueError(f"compute meter: measurement purpose {purpose!r}; expected one of {PURPOSES}")
        k = f"{'fn' if compute is not None else 'grad'}|{key or ''}|{_shape_key(inputs)}"
        result = None
        pb = self.partial_backward
        with pb.disabled() if pb is not None else contextlib.nullcontext():
            if compute is None:
                if k not in self._measures:
                    c = count_step(self.model, inputs, self._embedding_names)
                    self._measures[k] = [c["fwd"] + c["bwd"], c["fwd_emb"] + c["bwd_emb"]]
            elif k not in self._measures:
                with flop_counter() as counter:
                    result = compute()
                self._measures[k] = [int(counter.get_total_flops()), _share(counter, self._embedding_names)]
            else:
                result = compute()
        total, emb = self._measures[k]
        if purpose == "logging":
            self._sum["logging"] += total
        else:
            self._sum["mntk"] += total
            self._sum["mntk_emb"] += emb
        return result

    # ------------------------------------------------------------------------------ report
    def totals(self) -> dict[str, int]:
        s = self._sum
        noemb = (s["fwd"] - s["fwd_emb"]) + (s["bwd"] - s["bwd_emb"]) + (s["mntk"] - s["mntk_emb"])
        return {
            "flops_fwd": s["fwd"],
            "flops_bwd": s["bwd"],
            "flops_mntk": s["mntk"],
            "flops_total": s["fwd"] + s["bwd"] + s["mntk"],
            "flops_total_noemb": noemb,
            "flops_paper_estimate": s["paper"],
            "flops_paper_dense": (1 + BACKWARD_PER_FORWARD) * (s["fwd"] - s["fwd_emb"]),
            "flops_logging": s["logging"],
        }

    # ------------------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        return {
            "steps": {k: list(v) for k, v in self._steps.items()},
            "measures": {k: list(v) for k, v in self._measures.items()},
            "module_fwd": {k: list(v) for k, v in self._module_fwd.items()},
            "sums": dict(self._sum),
        }

    def load_state_dict(self, state: dict) -> None:
        for key in ("steps", "measures", "sums"):
            if key not in state:
                raise KeyError(f"compute meter state: missing key {key!r}; expected steps, measures, sums")
        if set(state["sums"]) != set(self._sum):
            raise KeyError(f"compute meter state: sums has keys {sorted(state['sums'])}, expected {sorted(self._sum)}")
        self._steps = {k: [int(x) for x in v] for k, v in state["steps"].items()}
        self._measures = {k: [int(x) for x in v] for k, v in state["measures"].items()}
        self._module_fwd = {k: [int(x) for x in v] for k, v in state.get("module_fwd", {}).items()}
        self._sum = {k: int(v) for k, v in state["sums"].items()}


ComputeMeter = MeasuredComputeMeter
