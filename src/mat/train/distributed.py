"""Data-parallel training across processes (`torchrun`): nccl on GPUs, gloo on CPU.

Launch: `torchrun --standalone --nproc_per_node N -m mat train --config FILE --out DIR` with
`train.gpus: N` in the config (N processes: one GPU each on CUDA, or N CPU processes with gloo).
`python -m mat train` alone is the one-process run; nothing here changes it.

What a data-parallel run does (`mat.train.loop.Trainer` calls the functions below):

- Same global batch. `train.batch_size` stays the GLOBAL batch. Every rank builds the step's whole
  batch exactly as the one-process run does (same permutation, same MLM masks or augmentation from
  the (seed, "batch", step) generator) and keeps its contiguous chunk of rows (`shard_rows`,
  `Tensor.tensor_split`, so an uneven batch is split as evenly as possible).
- Same loss. The one-process loss is a mean over the batch's counted targets (masked tokens for
  MLM, images for classification). Rank r backpropagates loss_r * count_r / count (count = the
  all-reduced total), so the SUM of the ranks' gradients is the gradient of the global mean;
  the logged loss is sum(loss_sum_r) / count. The Switch router loss (an auxiliary loss over the
  routing of the rank's own tokens) is averaged over ranks, as plain DDP does.
- Gradients: a manual all-reduce (SUM) after `backward()`, not `DistributedDataParallel`. DDP
  builds its buckets once over the parameters that require a gradient; the partial backward
  (`mat.backward`) switches `requires_grad` off for whole frozen tensors step by step, which DDP
  would have to see as "unused" parameters (find_unused_parameters: an extra graph walk per step
  and zeros communicated for them), and the mNTK, the FLOPs meter and SNIP call the bare model.
  Here only tensors that have a gradient are communicated: a whole frozen tensor (an expert, a
  layer) has none and costs nothing. A sliced head or filter owns rows of a shared weight; that
  weight's gradient is one tensor with the frozen rows zero (`PartialLinear`), and the whole
  tensor is communicated, zeros included. Every rank holds the same decision, hence the same set
  of gradients, so the collective calls line up.
- MAT: the S mNTK samples are split across ranks; each rank computes its samples' per-sample
  gradients, they are all-gathered, and every rank forms the same Gram matrices (Definition 1) and
  eigenvalues (`sharded_module_ntk`, the paper's way). Rank 0's eigenvalues are broadcast anyway,
  so every rank's policy (seeded identically) makes the same decisions.
- Evaluation runs on every rank (the same model, the same splits, the same numbers); only rank 0
  writes them. It costs no extra wall time, and keeps every rank at the same point.
- SNIP's minibatch gradient is computed on the whole minibatch by every rank (identical inputs,
  identical result; no communication).
- Outputs: only rank 0 writes CSVs, checkpoints and summary.json; other ranks log to `NullLog`.
- FLOPs are PER GPU, as the paper reports them: each rank's meter counts the work it ran (its
  shard of each step; its share of the mNTK's per-sample gradients plus the full Grams).
- Dropout: each rank draws its dropout masks from its own stream (seeded from (seed, rank)), so a
  run with dropout > 0 is a valid data-parallel run but not bitwise the one-process run, which
  draws the masks of the whole batch from one stream. Equal loss trajectories across world sizes
  need dropout 0 (tests/test_train_ddp.py sets it).
- BatchNorm (VGG16): statistics are per rank's shard (no SyncBatchNorm), as in plain DDP, so a VGG
  run is not the one-process trajectory; running statistics are re-broadcast from rank 0 after
  every step (DDP's broadcast_buffers) so evaluation and checkpoints see one model.
- Resume: the checkpoint holds every rank's RNG state, so a resumed data-parallel run continues
  each rank's dropout stream; it must be resumed with the same number of processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as tdist
from torch import nn

from mat.partition import Partition
from mat.train.run_config import ConfigError


class LaunchError(ConfigError):
    """The process launch does not match the run config (train.gpus vs the processes started)."""


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: rank r of `world` processes (world 1: no distribution)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes outputs."""
        return self.rank == 0


SINGLE = Dist()


def launched_world() -> int:
    """Number of processes started for this run: WORLD_SIZE, as torchrun (or any launcher using
    torch.distributed's env:// rendezvous: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) sets it;
    1 when it is not set."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        world = int(raw)
    except ValueError:
        raise LaunchError(f"environment variable WORLD_SIZE: expected a positive integer, got {raw!r}") from None
    if world < 1:
        raise LaunchError(f"environment variable WORLD_SIZE: expected a positive integer, got {raw!r}")
    if world > 1 and not tdist.is_available():
        raise LaunchError(f"WORLD_SIZE={world}, but this torch build has no torch.distributed")
    return world


def setup(device_type: str, gpus: int) -> Dist:
    """Join the process group when torchrun started more than one process (nccl for "cuda",
    gloo otherwise) and return this process's `Dist`. `gpus` is the config's `train.gpus`, which
    must equal the number of processes started."""
    world = launched_world()
    if world != gpus:
        how = "python -m mat train ..."
        if gpus > 1:
            how = f"torchrun --standalone --nproc_per_node {gpus} -m mat train ..."
        raise LaunchError(
            f"train.gpus: the config asks for {gpus} process(es), but {world} were started; launch with: {how}"
        )
    if world == 1:
        return SINGLE
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local)
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Dist(rank, world, local)


def local_device(device: torch.device, d: Dist) -> torch.device:
    """This rank's device: cuda:LOCAL_RANK for a data-parallel GPU run, else `device`."""
    return torch.device("cuda", d.local_rank) if d.enabled and device.type == "cuda" else device


def teardown(d: Dist) -> None:
    if d.enabled and tdist.is_initialized():
        tdist.destroy_process_group()


def _comm_device() -> torch.device:
    """Where collective tensors live: the current GPU for nccl, the CPU for gloo."""
    if tdist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ---------------------------------------------------------------------------------- batches
def shard_rows(x: torch.Tensor, d: Dist) -> torch.Tensor:
    """This rank's contiguous chunk of the rows of a global batch."""
    return x.tensor_split(d.world)[d.rank] if d.enabled else x


def check_batches(n_train: int, batch_size: int, d: Dist) -> None:
    """Every rank needs at least one row of every batch, the epoch's last (shorter) one included."""
    last = n_train - (-(-n_train // batch_size) - 1) * batch_size
    smallest = min(batch_size, last)
    if smallest < d.world:
        raise LaunchError(
            f"train.batch_size: got {batch_size}; with {n_train} training examples an epoch's batches have "
            f"as few as {smallest} rows, fewer than the {d.world} processes (train.gpus) that split each batch; "
            "use a batch size whose last batch of the epoch has at least one row per process"
        )


def all_reduce_sum(values: Sequence[float | torch.Tensor], d: Dist) -> list[float]:
    """Sum of each value over ranks, in float64 (one collective for all values)."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if d.enabled:
        t = t.to(_comm_device())
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t.cpu().tolist()


def all_reduce_grads(params: Sequence[nn.Parameter], d: Dist) -> None:
    """SUM the gradients that exist over ranks: one flat buffer per (device, dtype)."""
    if not d.enabled:
        return
    groups: dict[tuple, list[torch.Tensor]] = {}
    for p in params:
        if p.grad is not None:
            groups.setdefault((p.grad.device, p.grad.dtype), []).append(p.grad)
    for grads in groups.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        tdist.all_reduce(flat, op=tdist.ReduceOp.SUM)
        at = 0
        for g in grads:
            g.copy_(flat[at : at + g.numel()].view_as(g))
            at += g.numel()


# ---------------------------------------------------------------------------------- state
def broadcast_tensors(tensors: Sequence[torch.Tensor], d: Dist) -> None:
    """Overwrite `tensors` in place with rank 0's values."""
    if not d.enabled:
        return
    with torch.no_grad():
        for t in tensors:
            tdist.broadcast(t.data, src=0)


def floating_buffers(model: nn.Module) -> list[torch.Tensor]:
    """Buffers that training may change (BatchNorm running statistics)."""
    return [b for b in model.buffers() if b.is_floating_point()]


def broadcast_object(obj: Any, d: Dist) -> Any:
    """Rank 0's `obj` on every rank (picklable objects)."""
    if not d.enabled:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, d: Dist) -> list[Any]:
    """[rank 0's obj, rank 1's obj, ...] on every rank."""
    if not d.enabled:
        return [obj]
    out: list[Any] = [None] * d.world
    tdist.all_gather_object(out, obj)
    return out


def per_rank_seed(seed: int, d: Dist) -> int:
    """The seed of this rank's dropout stream (the run seed itself in a one-process run)."""
    from mat.train.seeds import derive_seed

    return seed if not d.enabled else derive_seed(seed, "dropout", d.rank)


# ---------------------------------------------------------------------------------- mNTK
def _all_gather_rows(x: torch.Tensor, sizes: list[int], d: Dist) -> torch.Tensor:
    """Concatenate every rank's `x` (rank r has sizes[r] rows) in rank order, on every rank."""
    width = max(sizes)
    padded = x.new_zeros(width, *x.shape[1:])
    padded[: x.shape[0]] = x
    dev = _comm_device()
    parts = [torch.empty_like(padded, device=dev) for _ in range(d.world)]
    tdist.all_gather(parts, padded.to(dev).contiguous())
    return torch.cat([p[:n] for p, n in zip(parts, sizes)]).to(x.device)


def sharded_module_ntk(
    model: nn.Module,
    inputs: torch.Tensor,
    partition: Partition,
    chunk_size: int,
    d: Dist,
    memory_gb: float | None = None,
    pass_bytes: list[int] | None = None,
) -> dict[str, torch.Tensor]:
    """`mat.ntk.module_ntk` with the S samples split across ranks (Algorithm 1, lines 3-7):
    per-sample gradients of this rank's samples, all-gathered into J_l [S, |theta^l|], then the
    same Grams Theta^l = J_l J_l^T (Definition 1) and eigenvalues on every rank; rank 0's
    eigenvalues are broadcast so every policy sees bitwise the same numbers.

    The same memory budget as on one device (`mat.ntk_budget`): the owned parameters go in passes
    that fit `memory_gb` with the gathered rows counted (`GATHER_COPIES`), one parameter gathered
    at a time; as there, a model exposing its stages runs each pass over its own stages only
    (`mat.ntk.pass_gradients`). `pass_bytes`: as in `mat.ntk.module_grams` (this rank's
    per-sample gradients)."""
    from mat import ntk
    from mat.ntk_budget import GATHER_COPIES

    if not d.enabled:
        return ntk.module_ntk(model, inputs, partition, chunk_size, memory_gb, pass_bytes)
    s = inputs.shape[0]
    params = dict(model.named_parameters())
    partition.check(params)
    spans = ntk._spans(partition)  # param -> (dim, [(start, stop, module)]): the Gram layout of mat.ntk
    mine = shard_rows(inputs, d)
    sizes = [t.shape[0] for t in inputs.tensor_split(d.world)]
    grams = torch.zeros(len(partition), s, s, dtype=torch.float64, device=inputs.device)
    groups = [[n for n in spans if n in set(p.names)] for p in ntk.passes(model, partition, s, memory_gb, copies=GATHER_COPIES)]
    if mine.shape[0]:  # passes top-down, each running only its own stages where the model has them
        per_pass = ((names, grads) for names, grads, _ in ntk.pass_gradients(model, mine, groups, chunk_size))
    else:  # fewer samples than ranks: this rank contributes no rows (in the same pass order)
        per_pass = ((names, {n: params[n].new_zeros(0, *params[n].shape) for n in names}) for names in reversed(groups))
    for names, grads in per_pass:
        if pass_bytes is not None:
            pass_bytes.append(sum(g.nbytes for g in grads.values()))
        for name in names:
            dim, sp = spans[name]
            full = _all_gather_rows(grads.pop(name).detach(), sizes, d)
            ntk._add_grams(grams, full, dim, sp)
            del full
    eig = ntk.eigenvalues(0.5 * (grams + grams.transpose(1, 2)))
    broadcast_tensors([eig], d)
    return dict(zip(partition.names, eig))


# ---------------------------------------------------------------------------------- logs
class NullLog:
    """The CSV log of a rank that writes nothing (every rank but 0); counts rows like CsvLog."""

    def __init__(self, rows: int | None = None):
        self.rows = int(rows or 0)

    def write(self, row) -> None:
        self.rows += 1

    def close(self) -> None:
        pass
