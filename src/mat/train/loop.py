"""The one training loop: every model (BERT, Switch, VGG16), every method (a policy).

Per epoch (Algorithm 1, lines 2-19): a permutation of the training set from a generator seeded by
(seed, epoch); at the epoch's start the registered measurements the policy wants plus those the
logging schedule asks for, handed to `policy.observe`, logged, then `policy.start_epoch`. Per step:
`policy.decide(step)` says which modules are updated and with what step size; the optimizer
applies exactly that (`decision_masks`). Training ends at the step budget or when the policy has
nothing left to train (`policy.finished()`, Algorithm 1 line 2). The loop never asks which method
is running.

Around the loop, each in its own file and taking plain data: the run's plan (`plan.RunPlan`), the
shared part of a step (`step`), the run folder's lifecycle (`resume`: finished, resumable or fresh)
and the end of a run (`summary`). What lands on disk is the run-folder contract's
(`mat.run_folder`): everything in flight lives in `OUT/.work/` (CSVs, checkpoint, the resolved
config); the final files appear in `OUT/` only at the end, `summary.json` last. Rerunning the same
command resumes from the last checkpoint and ends with the same CSVs as an uninterrupted run (on
CPU; all but `wall_seconds`).

Data-parallel runs (`train.gpus: N` launched by torchrun) go through this same loop: each rank
takes its rows of the global batch, gradients are summed across ranks, the mNTK samples are
split across ranks, and only rank 0 writes (mat.train.distributed). `train.precision: bf16`
autocasts the forward and the loss on CUDA only.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch

from mat import run_folder
from mat.train import checkpoint as ckpt
from mat.train import distributed, logs, measure, resume, seeds
from mat.train.plan import RunPlan
from mat.train.resume import RunConflictError
from mat.train.run_config import ConfigError
from mat.train.step import autocast, objective, update
from mat.train.summary import RunRecord, write_summary
from mat.train.tasks import load_task

log = logging.getLogger("mat.train")

__all__ = ["DivergedError", "RunConflictError", "RunInterrupted", "Trainer", "resolve_device", "train"]


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; `step` is the steps done (the rerun resumes from the last checkpoint)."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


class DivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: got 'cuda', but torch sees no CUDA device here; allowed values: auto, cpu, cuda")
    return torch.device(name)


class Trainer:
    """One run: built from a resolved run config (`load_run_config`) and an output folder."""

    def __init__(self, cfg: dict, out: str | Path, progress: bool = False, dist: distributed.Dist | None = None):
        self.cfg, self.out, self.work = cfg, Path(out), Path(out) / run_folder.WORK
        self.dist = dist or distributed.SINGLE  # data-parallel rank/world (mat.train.distributed)
        self.progress = progress and self.dist.main
        self.seed = int(cfg["seed"])
        self.device = distributed.local_device(resolve_device(cfg["device"]), self.dist)
        tcfg, ncfg = cfg["train"], cfg["ntk"]
        self.tcfg, self.ncfg = tcfg, ncfg
        self.bf16 = tcfg.get("precision", "fp32") == "bf16"
        if self.bf16 and self.device.type != "cuda":
            raise ConfigError(
                f"train.precision: got 'bf16', but this run's device is {self.device.type}; bf16 autocast is "
                "offered on CUDA only (CPU autocast is slow and changes results); set train.precision: fp32"
            )

        self.task = load_task(cfg, self.device)
        if self.dist.enabled:
            distributed.check_batches(self.task.n_train, tcfg["batch_size"], self.dist)
        torch.manual_seed(self.seed)  # model initialisation and dropout draw from the global generator
        random.seed(self.seed)
        from mat.models import build_model, build_partition
        from mat.optim import build_optimizer, build_schedule, decision_masks
        from mat.policies import build_policy

        self._decision_masks = decision_masks
        self.model = build_model({**cfg["model"], **self.task.model_options()}).to(self.device)
        self.params = dict(self.model.named_parameters())
        if self.dist.enabled:  # one model on every rank, then a dropout stream per rank
            distributed.broadcast_tensors([*self.params.values(), *self.model.buffers()], self.dist)
            torch.manual_seed(distributed.per_rank_seed(self.seed, self.dist))
        self.partition = build_partition(self.model, list(cfg["partition"]))
        self.partition.check(self.params)
        # Frozen heads and filters compute no weight gradient (mat.backward); the meter counts the
        # work that really runs, per (batch shape, active set) (mat.flops).
        from mat.backward import install_partial_backward
        from mat.flops import MeasuredComputeMeter

        self.backward = install_partial_backward(self.model, self.partition)
        self.forward = self._compiled() if tcfg["compile"] else self.model  # the training steps' forward
        self.extra_partitions = {  # logged besides the run's own partition (Figures 2-3: layers)
            kind: build_partition(self.model, [kind]) for kind in ncfg["log_kinds"] if [kind] != list(cfg["partition"])
        }

        self.plan = RunPlan.from_config(tcfg, self.task.n_train)
        self.steps_per_epoch, self.total_steps = self.plan.steps_per_epoch, self.plan.total_steps
        self.policy = build_policy(cfg["method"], self.partition, self.seed, self.steps_per_epoch)
        self.optimizer = build_optimizer(cfg["optim"], list(self.model.named_parameters()))
        self.scheduler = build_schedule(cfg["optim"], self.optimizer, self.total_steps)
        self.meter = MeasuredComputeMeter(self.model, self.partition, partial_backward=self.backward)
        self._budget_logged: list[list[str] | str] = []  # partitions (and "effective-rank") whose memory was logged

        n = len(self.partition)
        self.step = 0
        self.wall = 0.0  # seconds spent training (steps + measurements), across resumes
        self.pruned = torch.zeros(n, dtype=torch.bool)  # modules whose slices were zeroed
        self.epoch_active = torch.zeros(n, dtype=torch.long)  # steps each module was updated, this epoch
        self.epoch_steps = 0
        self.interval = [0.0, 0, 0, 0]  # train log: sum of step losses, steps, correct, counted
        self.last_eval_step = -1
        self.stopped_reason: str | None = None
        self._perm: tuple[int, torch.Tensor] | None = None
        self.resume_from: Path | None = None  # the checkpoint this run resumed from

    # ------------------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "wall": self.wall,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "policy": self.policy.state_dict(),
            "meter": self.meter.state_dict(),
            "rng": ckpt.rng_state(),
            "rng_ranks": distributed.gather_objects(ckpt.rng_state(), self.dist) if self.dist.enabled else None,
            "pruned": self.pruned.clone(),
            "epoch_active": self.epoch_active.clone(),
            "epoch_steps": self.epoch_steps,
            "interval": list(self.interval),
            "last_eval_step": self.last_eval_step,
            "rows": {name: self.logs[name].rows for name in run_folder.LOGS},
        }

    def load_state_dict(self, state: dict) -> None:
        self.step, self.wall = int(state["step"]), float(state["wall"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.policy.load_state_dict(state["policy"])
        self.meter.load_state_dict(state["meter"])
        self.pruned = state["pruned"].clone()
        self._remove_pruned()
        self.epoch_active = state["epoch_active"].clone()
        self.epoch_steps = int(state["epoch_steps"])
        loss_sum, steps, correct, count = state["interval"]
        self.interval = [float(loss_sum), int(steps), int(correct), int(count)]
        self.last_eval_step = int(state["last_eval_step"])
        ranks = state.get("rng_ranks")
        if self.dist.enabled and (ranks is None or len(ranks) != self.dist.world):
            raise ConfigError(
                f"{self.resume_from}: saved by a run of {len(ranks or [0])} process(es); "
                f"resume it with that many (this launch has {self.dist.world})"
            )
        ckpt.set_rng_state(ranks[self.dist.rank] if self.dist.enabled else state["rng"])

    def _open_logs(self, rows: dict | None) -> None:
        columns = run_folder.log_columns(self.ncfg["top_k"])
        keep = {name: None if rows is None else int(rows[name]) for name in columns}
        if not self.dist.main:  # only rank 0 writes outputs
            self.logs = {name: distributed.NullLog(keep[name]) for name in columns}
            return
        self.logs = {name: logs.CsvLog(self.work / name, cols, keep[name]) for name, cols in columns.items()}

    def _close_logs(self) -> None:
        for f in getattr(self, "logs", {}).values():
            f.close()

    # ------------------------------------------------------------------------------ timing
    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _timed(self, fn, *args):
        self._sync()
        t0 = time.perf_counter()
        result = fn(*args)
        self._sync()
        self.wall += time.perf_counter() - t0
        return result

    def _compiled(self):
        """`torch.compile` of the model for the training steps (`train.compile`). The partial
        backward's frozen set is Python state that the compiled graph is specialised on, so a new
        active set recompiles once (MAT: at most once per evaluation; Multirate: two sets); the
        recompile limit is raised so that a long MAT run keeps its compiled graphs."""
        limit = max(torch._dynamo.config.recompile_limit, 64)
        torch._dynamo.config.recompile_limit = limit
        torch._dynamo.config.accumulated_recompile_limit = max(torch._dynamo.config.accumulated_recompile_limit, 4 * limit)
        return torch.compile(self.model, backend=self.tcfg["compile_backend"])

    # ------------------------------------------------------------------------------ epoch start
    def _permutation(self, epoch: int) -> torch.Tensor:
        """This epoch's order of the training examples: a function of (seed, epoch) only."""
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, torch.randperm(self.task.n_train, generator=seeds.generator(self.seed, "epoch", epoch)))
        return self._perm[1]

    def _sample(self, epoch: int | str, purpose: str, size: int) -> torch.Tensor:
        """`size` training indices drawn for a measurement, a function of (seed, purpose, epoch);
        `epoch` may be a fixed key ("once") for a draw shared by the whole run."""
        gen = seeds.generator(self.seed, purpose, epoch)
        return torch.randperm(self.task.n_train, generator=gen)[: min(size, self.task.n_train)]

    def _start_epoch(self, epoch: int) -> None:
        """Measure what the policy wants and the logs ask for, then let the policy plan the epoch
        (Algorithm 1, lines 3-14 happen inside `observe` + `start_epoch`)."""
        wants = measure.wanted(self.policy.wants(epoch))  # registered measurements, in registry order
        every = self.ncfg["log_every"]
        self._mntk_taken = ([], None)  # [(partition, eigenvalues)], head ranks: for mntk.csv
        if "mntk" not in wants and every is not None and epoch % every == 0:
            self._mntk_taken = self._measure_mntk(epoch, for_policy=False)  # for the logs only
        for name in wants:
            self.policy.observe(epoch, name, measure.take(name, self, epoch))
        measured, ranks = self._mntk_taken
        self.policy.start_epoch(epoch)
        # The policy's view (threshold, information, stopped) only where it used this mNTK.
        report = measure.policy_report(self.policy) if "mntk" in wants else {}
        t = measure.evaluation_at(self.policy, epoch) if "mntk" in wants else None
        for part, eig in measured:
            rep = report if part is self.partition else None
            own = {"evaluation": t} if part is self.partition else {}
            for row in measure.mntk_rows(eig, part, self.ncfg["top_k"], ranks, rep):
                self.logs[run_folder.MNTK].write({"epoch": epoch, "step": self.step, "partition": "+".join(part.kinds), **row, **own})

    def _measure_mntk(self, epoch: int, for_policy: bool):
        """mNTK eigenvalues of every module of the run's partition (first) and of the logged
        partitions, on the S training inputs (see below); plus the heads' attention effective rank
        on the same inputs. Only the run partition's mNTK, and only when the policy asked for it
        (`for_policy`), is the method's computation; the rest is logging (`mat.flops`: method
        versus instrumentation).

        Algorithm 1, line 3: one set {x_i}, i = 1..S, drawn once per run (inputs and MLM masks from
        the run seed), so Delta_t (Eq. 6) compares the same samples at every evaluation.
        `ntk.resample: true` draws new ones from (seed, epoch) at every measurement instead."""
        draw = epoch if self.ncfg["resample"] else "once"
        index = self._sample(draw, "mntk", self.ncfg["samples"])
        inputs = self.task.measure_inputs(index, (self.seed, "mntk-inputs", draw))
        measured = []
        chunk, d, gb = self.ncfg["chunk_size"], self.dist, self.ncfg["memory_gb"]
        for part in (self.partition, *self.extra_partitions.values()):
            purpose = "method" if for_policy and part is self.partition else "logging"
            held: list[int] = []  # per-sample gradient bytes of each pass (ntk.memory_gb)
            if d.enabled:  # the S samples split across ranks, per-sample gradients gathered
                compute = lambda p=part: distributed.sharded_module_ntk(self.model, inputs, p, chunk, d, gb, held)  # noqa: E731
            else:
                compute = lambda p=part: measure.mntk(self.model, inputs, p, chunk, gb, held)  # noqa: E731
            eig = self.meter.mntk(inputs, compute, key=f"mntk|{'+'.join(part.kinds)}", purpose=purpose)
            measured.append((part, eig))
            if part.kinds not in self._budget_logged:  # the first evaluation of each partition
                self._budget_logged.append(part.kinds)
                log.info("%s (partition %s)", measure.budget_line(held, gb, self.device), "+".join(part.kinds))
        ranks = None
        heads = any(m.kind == "head" for p, _ in measured for m in p.modules)
        if self.dist.main and self.ncfg["effective_rank"] and heads:  # for the logs only: rank 0
            ranks = self.meter.mntk(
                inputs, lambda: measure.head_ranks(self.model, inputs, gb), key="effective-rank", purpose="logging"
            )
            if "effective-rank" not in self._budget_logged:
                self._budget_logged.append("effective-rank")
                log.info("%s", measure.rank_budget_line(self.model, inputs, gb))
        return measured, ranks

    # What a registered measurement may use of the run (`measure.Run`).
    def mntk_for_policy(self, epoch: int) -> dict[str, torch.Tensor]:
        self._mntk_taken = self._measure_mntk(epoch, for_policy=True)  # logged by _start_epoch
        return self._mntk_taken[0][0][1]

    def minibatch(self, epoch: int, purpose: str) -> tuple[torch.Tensor, torch.Tensor]:
        index = self._sample(epoch, purpose, self.tcfg["batch_size"])
        return self.task.train_batch(index, (self.seed, f"{purpose}-batch", epoch))

    def training_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self._objective(inputs, targets, self.model)[0]

    def metered(self, inputs: torch.Tensor, compute, key: str | None = None):
        return self.meter.mntk(inputs, compute, key=key)

    # ------------------------------------------------------------------------------ one step
    def _objective(self, inputs: torch.Tensor, targets: torch.Tensor, forward=None):
        """(training loss, task loss terms): task loss + aux_loss_coef x the model's auxiliary loss
        (Switch router load balancing; zero for the others). `forward`: the training steps' (maybe
        compiled) forward unless given; measurements pass the eager model."""
        forward = self.forward if forward is None else forward
        return objective(forward, inputs, targets, self.task.loss, self.model.aux_loss, self.tcfg["aux_loss_coef"])

    def _zero_pruned(self, newly: torch.Tensor) -> None:
        """Remove newly pruned modules from the forward pass: their slices become zero, once.
        They are never active again, so the masked optimizer keeps them at zero. Pruned heads also
        leave the computation (`_remove_pruned`)."""
        with torch.no_grad():
            for i in torch.nonzero(newly).flatten().tolist():
                for s in self.partition.modules[i].slices:
                    p = self.params[s.param]
                    p[s.index(p.dim())] = 0
        self.pruned |= newly
        self._remove_pruned()

    def _remove_pruned(self) -> None:
        """Appendix B.2, "pruning methods eliminate the forward and backward propagations of pruned
        modules": pruned heads' matmuls, attention scores and gradients no longer run (an index map
        over the kept heads, `mat.backward`; parameter shapes, optimizer state and checkpoints are
        unchanged, so a resumed run calls this again after loading `pruned`). Other kinds stay
        zeroed but computed (`mat.models.removable_modules`). The function is the zeroed model's,
        but attention dropout now draws masks for the kept heads only, so a pruned run's dropout
        stream differs from what zeroing alone would have drawn."""
        from mat.models import removable_modules

        self.backward.set_removed(self.pruned & removable_modules(self.model, self.partition))

    def _train_step(self, step: int, epoch: int) -> None:
        """One optimizer step on the epoch's next batch, updating only what the policy decided
        (Algorithm 1, lines 15-17: theta^l -= eta grad for theta^l in I)."""
        decision = self.policy.decide(step)
        active = decision.active.bool().cpu()
        if decision.pruned is not None:
            pruned = decision.pruned.bool().cpu()
            if (pruned & ~self.pruned).any():
                self._zero_pruned(pruned & ~self.pruned)
            active = active & ~pruned
            decision = dataclasses.replace(decision, active=active)

        index = self._permutation(epoch)[self.plan.batch_rows(step)]
        inputs, targets = self.task.train_batch(index, (self.seed, "batch", step))
        d = self.dist
        inputs, targets = distributed.shard_rows(inputs, d), distributed.shard_rows(targets, d)
        self.meter.step(inputs, decision)  # FLOPs per GPU: this rank's rows only
        self.backward.set_active(active)

        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.bf16):
            loss, out = self._objective(inputs, targets)
        task_loss, correct, count = float(out.loss.detach()), int(out.correct), int(out.count)
        if d.enabled:  # the global batch's mean loss (mat.train.distributed, "Same loss")
            aux = loss - out.loss
            sums = distributed.all_reduce_sum([out.loss_sum, count, correct, aux.detach()], d)
            total, count_all, correct, aux_sum = sums
            count, correct = int(count_all), int(correct)
            task_loss = total / max(count, 1)
            loss = out.loss * (max(int(out.count), 1) / max(count, 1)) + aux / d.world
            value = task_loss + aux_sum / d.world
        else:
            value = float(loss.detach())
        if not math.isfinite(value):
            raise DivergedError(
                f"loss is {value} at step {step} (epoch {epoch}); stopped without saving a checkpoint; "
                + resume.last_good(self.work)
            )
        # Frozen modules keep their slices and optimizer state bit for bit (mat.optim).
        update(loss, self.optimizer, lambda: self._decision_masks(decision, self.partition, self.params),
               params=self.model.parameters(), grad_clip=self.tcfg["grad_clip"],
               reduce_grads=lambda: distributed.all_reduce_grads(list(self.params.values()), d))  # SUM over ranks
        self.scheduler.step()
        if d.enabled:  # BatchNorm running statistics: rank 0's (DDP's broadcast_buffers)
            distributed.broadcast_tensors(distributed.floating_buffers(self.model), d)

        self.epoch_active += active.long()
        self.epoch_steps += 1
        self.interval[0] += task_loss
        self.interval[1] += 1
        self.interval[2] += correct
        self.interval[3] += count

    # ------------------------------------------------------------------------------ logging
    def _metrics_row(self, epoch: int, split: str, loss: float, accuracy: float) -> None:
        row = {"step": self.step, "epoch": epoch, "split": split, "loss": loss, "accuracy": accuracy}
        row.update(self.meter.totals())
        row["wall_seconds"] = self.wall
        self.logs[run_folder.METRICS].write(row)

    def _log_train(self, epoch: int) -> None:
        loss_sum, steps, correct, count = self.interval
        if steps:
            self._metrics_row(epoch, "train", loss_sum / steps, correct / count if count else math.nan)
            self.interval = [0.0, 0, 0, 0]

    def _end_epoch(self, epoch: int) -> None:
        for i, m in enumerate(self.partition.modules):
            self.logs[run_folder.MODULES].write(
                {
                    "epoch": epoch,
                    "module": m.name,
                    "kind": m.kind,
                    "layer": m.layer,
                    "index": m.index,
                    "steps_active": int(self.epoch_active[i]),
                    "steps": self.epoch_steps,
                    "pruned": bool(self.pruned[i]),
                }
            )
        self.epoch_active.zero_()
        self.epoch_steps = 0

    @torch.no_grad()
    def evaluate(self, epoch: int) -> dict[str, tuple[float, float]]:
        """Loss (averaged over every target) and accuracy on each evaluation split, in eval mode."""
        was_training = self.model.training
        self.model.eval()
        results = {}
        try:
            for split in self.task.eval_splits:
                loss_sum, correct, count = 0.0, 0, 0
                for inputs, targets in self.task.eval_batches(split):
                    with autocast(self.bf16):
                        out = self.task.loss(self.model(inputs), targets)
                    loss_sum += float(out.loss_sum)
                    correct += int(out.correct)
                    count += int(out.count)
                results[split] = (loss_sum / max(count, 1), correct / max(count, 1))
        finally:
            self.model.train(was_training)
        for split, (loss, acc) in results.items():
            self._metrics_row(epoch, split, loss, acc)
        self.last_eval_step = self.step
        log.info(
            "step %d/%d epoch %d: %s",
            self.step,
            self.total_steps,
            epoch,
            ", ".join(f"{s} loss {l:.4f} acc {a:.4f}" for s, (l, a) in results.items()),
        )
        return results

    # ------------------------------------------------------------------------------ the run
    def _save_checkpoint(self) -> None:
        """Save the resume state, unless the weights went non-finite (a finite loss can still
        come with an overflowing update): the last good checkpoint is kept instead."""
        bad = [name for name, p in self.params.items() if not torch.isfinite(p).all()]
        if bad:
            raise DivergedError(
                f"parameters {bad[:3]} became non-finite by step {self.step} (epoch {(self.step - 1) // self.steps_per_epoch}); "
                "stopped without saving a checkpoint; " + resume.last_good(self.work)
            )
        state = self.state_dict()  # a collective under data parallelism (every rank's RNG state)
        if self.dist.main:
            ckpt.save(self.work / run_folder.CHECKPOINT, state)

    def run(self, force: bool = False, discard_stale: bool = False) -> dict:
        """Train (or resume) to the end and publish the outputs (rank 0); returns the summary."""
        point = resume.prepare_work_on_ranks(self.work, self.cfg, force, discard_stale, self.dist)
        self.resume_from, state = (point.path, point.state) if point else (None, None)
        self._open_logs(state["rows"] if state else None)
        try:
            if state:
                self.load_state_dict(state)
                log.info("resuming from step %d of %d (%s)", self.step, self.total_steps, self.resume_from)
            self._loop()
        finally:
            self._close_logs()
        summary = None
        if self.dist.main:
            weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            summary = write_summary(self.record(), self.work, self.out, weights)
            shutil.rmtree(self.work)
        return distributed.broadcast_object(summary, self.dist)

    def record(self) -> RunRecord:
        """What the run reports about itself in summary.json (plain data)."""
        return RunRecord(
            cfg=self.cfg, model={**self.cfg["model"], **self.task.model_options()}, device=self.device, plan=self.plan,
            steps=self.step, stopped_reason=self.stopped_reason, mat_evaluations=measure.mat_evaluations(self.policy),
            compute=self.meter.totals(), wall_seconds=self.wall,
        )

    def _loop(self) -> None:
        from tqdm import tqdm

        spe, tcfg = self.steps_per_epoch, self.tcfg
        # A bar on a terminal; into a log file (Snakemake), plain lines about every 10% instead.
        tty = sys.stderr.isatty()
        lines_every = max(self.total_steps // 10, 1) if self.progress and not tty else 0
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (self.progress and tty), unit="step",
                   dynamic_ncols=True)
        try:
            while self.step < self.total_steps:
                step, epoch = self.step, self.step // spe
                if step % spe == 0:
                    self._timed(self._start_epoch, epoch)
                if self.policy.finished():  # Algorithm 1, line 2: no module left to train
                    self.stopped_reason = f"the policy has no module left to train (at step {step}, epoch {epoch})"
                    log.info("stopping early: %s", self.stopped_reason)
                    break
                self._timed(self._train_step, step, epoch)
                self.step = step + 1
                bar.update(1)
                if lines_every and self.step % lines_every == 0:
                    log.info("step %d/%d (%d%%), train loss %.4f", self.step, self.total_steps,
                             100 * self.step // self.total_steps, self.interval[0] / max(self.interval[1], 1))
                if self.step % tcfg["log_every"] == 0:
                    if self.progress:
                        bar.set_postfix(loss=f"{self.interval[0] / max(self.interval[1], 1):.4f}")
                    self._log_train(epoch)
                if self.step % spe == 0:
                    self._end_epoch(epoch)
                if self.step % tcfg["eval_every"] == 0:
                    self.evaluate(epoch)
                if tcfg["checkpoint_every"] and self.step % tcfg["checkpoint_every"] == 0 and self.step < self.total_steps:
                    self._save_checkpoint()
        except KeyboardInterrupt:
            raise RunInterrupted(self.step) from None
        finally:
            bar.close()
        # The end: whatever the last interval, epoch and evaluation left pending.
        last_epoch = max(self.step - 1, 0) // spe
        self._log_train(last_epoch)
        if self.epoch_steps:
            self._end_epoch(last_epoch)
        if self.last_eval_step != self.step:
            self.evaluate(last_epoch)


def train(cfg: dict, out: str | Path, force: bool = False, progress: bool = False, discard_stale: bool = False) -> dict:
    """Train one run (a resolved config from `load_run_config`) into `out`; returns the summary.

    If `out/summary.json` exists with the same config, the run is already complete: nothing is
    done and its summary is returned. With a different config it is refused unless `force`, which
    discards the old outputs (and any resume state) first. An unfinished run in `out/.work/` is
    resumed; one of another config is refused, or discarded with a log line if `discard_stale`."""
    d = distributed.setup(resolve_device(cfg["device"]).type, int(cfg["train"].get("gpus", 1)))
    try:
        return _train(cfg, Path(out), force, progress, d, discard_stale)
    finally:
        distributed.teardown(d)


def _train(cfg: dict, out: Path, force: bool, progress: bool, d: distributed.Dist, discard_stale: bool = False) -> dict:
    done = resume.finished_summary(out, cfg, force, may_delete=d.main)
    if done is not None:
        return done
    return Trainer(cfg, out, progress=progress, dist=d).run(force=force, discard_stale=discard_stale)
