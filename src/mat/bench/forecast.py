"""A run's steps and vanilla-step FLOPs from its config, without training it.

Used by benchmarks/gpu_hours.py (compute time per table) and benchmarks/mat_overhead.py (MAT's
evaluations as a share of a run). Steps come from the trainer's own plan (`mat.train.RunPlan`);
FLOPs per step from `mat.flops.count_step` on one VANILLA training step (forward + full backward)
at the run's batch shape and model, on a shape-only ("meta") copy of the model by default (the same
count as on a real one, much faster), cached per (model config, batch shape).

n_train (needed only for runs with `train.epochs`): read from the run's data folder when it holds
the prepared dataset (exact: the sequences the trainer would load); for the generated datasets
(tiny-*) a missing folder is generated into a scratch folder with the profile's options (offline).
The real datasets are not downloaded; without them:
- CIFAR-10: 50,000 training images (the dataset's documentation; exact, the trainer uses them all);
- WikiText: the documented word-level token count of the training split (Merity et al. 2016,
  Table 1) as the token stream: a LOWER bound on the sequences our WordPiece tokenisation cuts,
  hence on the steps of epoch-based WikiText runs. `n_train_source` says which rule was used.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import torch

from mat.flops import count_step
from mat.models import build_model
from mat.train.plan import RunPlan
from mat.train.run_config import IMAGE_DATASETS

CIFAR10_TRAIN_IMAGES = 50_000  # CIFAR-10 documentation: 5 batches of 10,000 training images
WIKITEXT_TRAIN_WORDS = {  # Merity et al. 2016 ("Pointer Sentinel Mixture Models"), Table 1
    "wikitext2": 2_088_628,
    "wikitext103": 103_227_021,
}


def _generated(name: str, options: dict, folder: Path) -> Path:
    """A generated dataset (tiny-*) made with the profile's options, as the workflow's `data` rule does."""
    from mat.data.cli import add_arguments, run

    p = argparse.ArgumentParser()
    add_arguments(p)
    argv = ["get", name, "--out", str(folder), "--no-progress"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    said = io.StringIO()  # the data CLI lists every file it wrote; keep this script's output a table
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        status = run(p.parse_args(argv))
    if status != 0:
        raise SystemExit(f"could not generate {name} (python -m mat data {' '.join(argv)}):\n{said.getvalue()}")
    return folder


class Datasets:
    """n_train and the vocabulary of a run's data, per (folder, vocab, seq_len); see the module doc."""

    def __init__(self, profile: dict, root: Path, scratch: Path):
        self.profile, self.root, self.scratch = profile, root, scratch
        self._cache: dict[tuple, tuple[int, int | None, str, bool]] = {}

    def _folder(self, cfg: dict) -> tuple[Path | None, str]:
        data = cfg["data"]
        folder = Path(data["dir"])
        folder = folder if folder.is_absolute() else self.root / folder
        if (folder / "mat-data.json").is_file():
            return folder, f"counted from {data['dir']}"
        if data["name"].startswith("tiny-"):
            ds = next((k for k, v in self.profile["datasets"].items() if v["name"] == data["name"]), data["name"])
            options = self.profile["datasets"].get(ds, {}).get("options", {})
            return _generated(data["name"], options, self.scratch / ds), "counted from data generated here (profile options)"
        return None, ""

    def describe(self, cfg: dict) -> tuple[int, int | None, str, bool]:
        """(n_train, vocabulary of the loaded data or None, where n_train came from, whether exact)."""
        data = cfg["data"]
        text = data["name"] not in IMAGE_DATASETS
        key = (data["name"], data["dir"], data.get("vocab_size"), data.get("seq_len"))
        if key in self._cache:
            return self._cache[key]
        folder, source = self._folder(cfg)
        if folder is not None and text:
            from mat.data import load_text

            t = load_text(folder, data["vocab_size"], data["seq_len"], cache_dir=data.get("cache_dir"))  # the trainer's cache
            out = (int(t.train.shape[0]), int(t.vocab_size), source, True)
        elif folder is not None:
            from mat.data import load_images

            out = (int(load_images(folder).train_x.shape[0]), None, source, True)
        elif data["name"] == "cifar10":
            out = (CIFAR10_TRAIN_IMAGES, None, "documented: CIFAR-10 has 50,000 training images", True)
        else:
            words = WIKITEXT_TRAIN_WORDS[data["name"]]
            n = words // (data["seq_len"] - 1)
            out = (n, None, f"lower bound: {words:,} documented training words (Merity et al. 2016) "
                            f"/ {data['seq_len'] - 1} tokens per sequence; our WordPiece stream is longer", False)
        self._cache[key] = out
        return out


# ---------------------------------------------------------------------------------- FLOPs
class StepFlops:
    """FLOPs of one vanilla training step (forward + full backward), cached per (model, shape)."""

    def __init__(self, device: str = "meta"):
        self.device = device
        self._cache: dict[str, int] = {}

    def __call__(self, model_cfg: dict, shape: tuple[int, ...], text: bool) -> int:
        key = json.dumps([model_cfg, shape], sort_keys=True)
        if key not in self._cache:
            torch.manual_seed(0)
            with torch.device(self.device):
                model = build_model(model_cfg)
            x = torch.zeros(shape, dtype=torch.long if text else torch.float32, device=self.device)
            c = count_step(model, x)
            self._cache[key] = c["fwd"] + c["bwd"]
        return self._cache[key]


def plan(cfg: dict, datasets: Datasets, flops: StepFlops) -> dict:
    """One run's steps and vanilla FLOPs (the CSV's per-run columns) from its resolved run config."""
    train, data = cfg["train"], cfg["data"]
    text = data["name"] not in IMAGE_DATASETS
    n_train, vocab, source, exact = datasets.describe(cfg)
    if train["max_steps"] is not None and not exact:
        n_train, source = None, "not needed: a step budget (train.max_steps)"
    bs = train["batch_size"]
    if text:
        vocab = vocab or data["vocab_size"]
        model_cfg = {**cfg["model"], "vocab_size": vocab}
        shape = lambda b: (b, data["seq_len"])  # noqa: E731
    else:
        model_cfg, shape = dict(cfg["model"]), lambda b: (b, 3, 32, 32)  # noqa: E731
    run = RunPlan.from_config(train, n_train)
    spe, steps = run.steps_per_epoch, run.total_steps
    per_step = flops(model_cfg, shape(bs), text)
    # The trainer's last step of an epoch takes the n_train - (spe - 1) x bs examples left over
    # (known only when n_train is exact; otherwise every batch is counted full).
    last = n_train - (spe - 1) * bs if exact and n_train is not None else bs
    short = steps // spe if last < bs else 0  # steps that end an epoch
    per_run = (steps - short) * per_step + (short * flops(model_cfg, shape(last), text) if short else 0)
    notes = ["vanilla step FLOPs (an upper bound for the other methods); mNTK, SNIP and evaluation not counted"]
    if not (exact and n_train is not None):
        notes.append("every batch counted full (the epoch's last, shorter batch is unknown without the data)")
    if text and vocab == data["vocab_size"] and not source.startswith("counted"):
        notes.append("vocabulary as configured (the trained tokenizer may have fewer pieces)")
    return {
        "model": " ".join(f"{k}={v}" for k, v in cfg["model"].items()),
        "batch_shape": "x".join(map(str, shape(bs))), "vocab": vocab if text else "",
        "n_train": "" if n_train is None else n_train, "n_train_source": source,
        "steps_per_epoch": "" if spe is None else spe, "epochs": train["epochs"] or "",
        "max_steps": train["max_steps"] or "", "steps_per_run": steps, "last_batch": last if short else "",
        "flops_per_step": per_step, "flops_per_run": per_run, "notes": "; ".join(notes),
    }
