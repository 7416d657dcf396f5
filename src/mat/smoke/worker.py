"""One smoke run in this process, through the real trainer (mat.train.loop.Trainer):

1. a Trainer on the smoke config trains to the checkpoint at step `steps - 1` and is interrupted
   there (as Ctrl-C would: RunInterrupted);
2. a second Trainer on the same config and folder resumes from that checkpoint (the real resume
   path), trains the last step, evaluates and publishes the run's outputs.

Hooks on the trainer instances (no change to the loop) time every training step, every measurement
(`meter.mntk`: the mNTK per partition, SNIP's sensitivity, the attention effective rank), the
evaluation and the checkpoint, and read peak memory: RSS high-water mark on CPU (reset around each
measurement through /proc/self/clear_refs), `torch.cuda.max_memory_allocated` on GPU.

    python -m mat.smoke.worker --config CFG.json --out RUN_DIR --result RESULT.json [--pad-vocab N]

The result JSON is written (atomically) in every case; status "ok", "out of memory" or "error".
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch

from mat.bench.memory import Peak

GB = 1e9


class _Checkpointed(KeyboardInterrupt):
    """Raised right after the first checkpoint: the trainer stops as on Ctrl-C."""


class Probe:
    """Timings and peaks gathered from the hooks of both trainers."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, Peak(device)
        self.steps: list[float] = []
        self.measurements: list[dict] = []
        self.eval_seconds = 0.0
        self.eval_batches = 0
        self.checkpoint_seconds = 0.0
        self.checkpoints = 0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed(self, fn):
        self.sync()
        t0 = time.perf_counter()
        result = fn()
        self.sync()
        return result, time.perf_counter() - t0

    def attach(self, trainer, interrupt: bool) -> None:
        """Wrap this trainer instance's step, measurement, evaluation and checkpoint."""
        step, mntk, evaluate, save = trainer._train_step, trainer.meter.mntk, trainer.evaluate, trainer._save_checkpoint

        def train_step(*a, **k):
            _, s = self.timed(lambda: step(*a, **k))
            self.steps.append(s)

        def measure(inputs, compute=None, key=None, purpose="method"):
            self.peak.reset()
            result, s = self.timed(lambda: mntk(inputs, compute, key=key, purpose=purpose))
            self.measurements.append({"key": key or "snip", "purpose": purpose, "seconds": s, "peak_bytes": self.peak.read()})
            return result

        batches = trainer.task.eval_batches

        def eval_batches(split):
            for batch in batches(split):
                self.eval_batches += 1
                yield batch

        def evaluation(*a, **k):
            result, s = self.timed(lambda: evaluate(*a, **k))
            self.eval_seconds += s
            return result

        def checkpoint(*a, **k):
            _, s = self.timed(lambda: save(*a, **k))
            self.checkpoint_seconds += s
            self.checkpoints += 1
            if interrupt:
                raise _Checkpointed()

        trainer._train_step, trainer.meter.mntk, trainer.evaluate = train_step, measure, evaluation
        trainer._save_checkpoint, trainer.task.eval_batches = checkpoint, eval_batches


def _pad_vocab(size: int | None) -> None:
    """A stand-in corpus has fewer distinct pieces than the profile's vocabulary: keep the model's
    embedding and output layer at the profile's size (the MLM's random replacements draw from it)."""
    if not size:
        return
    from mat.train import loop

    load = loop.load_task

    def load_task(cfg, device):
        task = load(cfg, device)
        data = getattr(task, "data", None)
        if data is not None and hasattr(data, "vocab_size"):
            data.vocab_size = max(int(data.vocab_size), int(size))
        return task

    loop.load_task = load_task


def _sizes(task) -> tuple[int, dict[str, int]]:
    """The loaded data's training size and full evaluation split sizes (before eval_batches)."""
    data = task.data
    if hasattr(data, "valid"):
        return int(task.n_train), {"valid": int(data.valid.shape[0]), "test": int(data.test.shape[0])}
    return int(task.n_train), {"test": int(data.test_x.shape[0])}


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def smoke_one(cfg: dict, out: Path, pad_vocab: int | None = None) -> dict:
    """Train, checkpoint, resume, evaluate; returns the measurements (raises on any failure)."""
    from mat.train import load_run_config
    from mat.train.loop import RunInterrupted, Trainer

    _pad_vocab(pad_vocab)
    cfg = load_run_config(cfg)
    steps = int(cfg["train"]["max_steps"])
    t0 = time.perf_counter()
    first = Trainer(cfg, out)
    probe = Probe(first.device)
    probe.peak.reset()
    build_seconds = time.perf_counter() - t0
    result = {"device": str(first.device), "params": sum(p.numel() for p in first.model.parameters()),
              "build_seconds": build_seconds}
    result["n_train"], result["eval_sizes"] = _sizes(first.task)
    probe.attach(first, interrupt=True)
    try:
        first.run(force=True)
        raise RuntimeError(f"smoke: the run finished without the checkpoint at step {steps - 1}")
    except RunInterrupted as exc:
        result["checkpoint_step"] = exc.step
    # The probe's hooks close over the first trainer's methods (a reference cycle): collect it now, so
    # the resume's peak memory is the second trainer's alone, as a resume in a fresh process would be.
    del first
    gc.collect()
    if probe.device.type == "cuda":
        torch.cuda.empty_cache()
    second = Trainer(cfg, out)
    probe.attach(second, interrupt=False)
    summary = second.run()
    if second.resume_from is None:
        raise RuntimeError("smoke: the second trainer did not resume from the checkpoint")
    if int(summary["steps"]) != steps:
        raise RuntimeError(f"smoke: the resumed run ended at step {summary['steps']}, expected {steps}")
    probe.peak.read()
    result.update(
        step_seconds=probe.steps,
        measurements=probe.measurements,
        eval_seconds=probe.eval_seconds,
        eval_batches=probe.eval_batches,
        checkpoint_seconds=probe.checkpoint_seconds / max(probe.checkpoints, 1),
        peak_bytes=probe.peak.overall,
        peak_kind="cuda allocated" if probe.device.type == "cuda" else "RSS",
        rss_resettable=probe.peak.resettable,
        final={k: v for k, v in summary.get("final", {}).items()},
    )
    return result


def _write(path: Path, result: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mat.smoke.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--pad-vocab", type=int)
    args = parser.parse_args(argv)
    result_path = Path(args.result)
    cfg = json.loads(Path(args.config).read_text())
    try:
        result = {"status": "ok", "message": "", **smoke_one(cfg, Path(args.out), args.pad_vocab)}
    except BaseException as exc:  # noqa: BLE001 -- every failure is reported, the runner goes on
        status = "out of memory" if is_oom(exc) else "error"
        message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        traceback.print_exc()
        _write(result_path, {"status": status, "message": message[:500]})
        return 1
    _write(result_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
