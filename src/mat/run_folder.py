"""The run-folder contract: what a training run leaves on disk, read by everyone who reads runs.

A run folder `results/<profile>/runs/<experiment>/<method>/seed<N>/` holds

    config.yaml    the run's config (written by the workflow before training; `CONFIG`)
    metrics.csv    one row per logged train interval or evaluation (`METRICS_COLUMNS`)
    mntk.csv       mNTK eigenvalues per module at the start of logged epochs (`mntk_columns`)
    modules.csv    per module and epoch: steps it was updated, whether pruned (`MODULES_COLUMNS`)
    model.pt       the final weights (a state dict; `torch.load(..., weights_only=True)`)
    summary.json   written LAST: its presence means the run is complete (`SUMMARY_KEYS`)

While it trains, everything in flight lives in `.work/` inside it (`WORK`): the three logs, the
resume checkpoints (`CHECKPOINT`, `CHECKPOINT_PREVIOUS`) and the resolved config (`WORK_CONFIG`).
`publish` moves a finished run's files into place, `summary.json` last, every file through the
project's one atomic writer (`mat.atomic`). An experiment's folder gets `EXPERIMENT_DONE` once all
its runs are complete (the workflow's `experiment` rule).

The trainer writes this layout, the report (`mat.report.runs`, `mat.report.run_logs`) reads it, the
workflow declares it as outputs, the benchmarks read finished runs through it. This module imports
nothing from `mat` except the atomic writer, so anything may import it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping

from mat.atomic import atomic_path, copy_atomic, write_atomic

# ---------------------------------------------------------------------------------- file names
CONFIG = "config.yaml"
METRICS = "metrics.csv"
MNTK = "mntk.csv"
MODULES = "modules.csv"
MODEL = "model.pt"
SUMMARY = "summary.json"
LOGS = (METRICS, MNTK, MODULES)  # the CSV logs, in the order they are published
OUTPUTS = (SUMMARY, *LOGS, MODEL)  # every file a finished run has (the workflow's declared outputs)

WORK = ".work"  # resume state of an unfinished run, inside the run folder
WORK_CONFIG = "config.json"  # the resolved config the resume state belongs to
CHECKPOINT = "checkpoint.pt"
CHECKPOINT_PREVIOUS = "checkpoint.prev.pt"  # the one before, kept in case the newest is damaged
EXPERIMENT_DONE = ".complete"  # in runs/<experiment>/: every run of the experiment is complete

# ---------------------------------------------------------------------------------- CSV columns
# metrics.csv: split is train|valid|test; loss/accuracy of that split (train: mean over the interval).
METRICS_ID_COLUMNS = ("step", "epoch", "split", "loss", "accuracy")
SPLITS = ("train", "valid", "test")
# Cumulative FLOPs per GPU up to the row's step (mat.flops, whose COLUMNS must equal these).
COMPUTE_COLUMNS = (
    "flops_fwd", "flops_bwd", "flops_mntk", "flops_total", "flops_total_noemb", "flops_paper_estimate",
    "flops_paper_dense", "flops_logging",
)
METRICS_COLUMNS = METRICS_ID_COLUMNS + COMPUTE_COLUMNS + ("wall_seconds",)

MODULES_COLUMNS = ("epoch", "module", "kind", "layer", "index", "steps_active", "steps", "pruned")

MNTK_ID_COLUMNS = ("epoch", "step", "partition", "module", "kind", "layer", "index", "lambda_max", "lambda_min")
# `evaluation`: MAT's t (Algorithm 1) when this mNTK was one of its evaluations, else empty
MNTK_REPORT_COLUMNS = ("effective_rank", "threshold", "information", "stopped", "evaluation")
EIG_PREFIX = "eig_"  # eig_0 .. eig_{top_k - 1}: the largest eigenvalues, descending


def mntk_columns(top_k: int) -> tuple[str, ...]:
    """mntk.csv's header for a run keeping `ntk.top_k` eigenvalues per module."""
    return MNTK_ID_COLUMNS + tuple(f"{EIG_PREFIX}{i}" for i in range(top_k)) + MNTK_REPORT_COLUMNS


def log_columns(top_k: int) -> dict[str, tuple[str, ...]]:
    """Each CSV log's header, by file name."""
    return {METRICS: METRICS_COLUMNS, MNTK: mntk_columns(top_k), MODULES: MODULES_COLUMNS}


# ---------------------------------------------------------------------------------- summary.json
SUMMARY_KEYS = (
    "name", "config", "model", "seed", "versions", "git_commit", "hardware", "steps", "total_steps",
    "steps_per_epoch", "epochs", "n_train", "stopped_early", "mat_evaluations", "final",
    # then best_valid (text: valid + test splits) or best_test_accuracy (images: test only)
)
RESULT_KEYS = ("best_valid", "best_test_accuracy")
SUMMARY_TAIL = ("compute", "wall_seconds")
# What depends on the machine and the moment, not on the config: left out when runs are compared.
PROVENANCE_KEYS = ("versions", "git_commit", "hardware", "wall_seconds")
TIMING_COLUMNS = ("wall_seconds",)  # the columns of metrics.csv that differ between identical runs


# ---------------------------------------------------------------------------------- reading
def is_complete(run_dir: str | Path) -> bool:
    """A run is complete when its summary.json exists (it is written last)."""
    return (Path(run_dir) / SUMMARY).is_file()


def read_summary(run_dir: str | Path) -> dict:
    """summary.json of a run (OSError / json.JSONDecodeError to the caller, who names the run)."""
    return json.loads((Path(run_dir) / SUMMARY).read_text())


def canonical_config(cfg: Mapping | None) -> str:
    """The text two configs are compared by (key order does not matter)."""
    return json.dumps(cfg, sort_keys=True)


# ---------------------------------------------------------------------------------- writing
def write_work_config(work: Path, cfg: Mapping) -> None:
    write_atomic(Path(work) / WORK_CONFIG, canonical_config(cfg))


def work_config_matches(work: Path, cfg: Mapping) -> bool:
    path = Path(work) / WORK_CONFIG
    return path.is_file() and json.loads(path.read_text()) == json.loads(canonical_config(cfg))


def publish(work: Path, out: Path, summary: Mapping, save_model: Callable[[Path], None]) -> None:
    """Move a finished run into place: the logs copied from `work`, the weights written by
    `save_model(path)` (to `.model.pt.tmp`, renamed), then `summary.json` LAST. Until then `work` (checkpoint included)
    is untouched, so a crash while publishing just resumes and republishes."""
    for name in LOGS:
        copy_atomic(Path(work) / name, Path(out) / name)
    with atomic_path(Path(out) / MODEL, unique=False) as tmp:  # torch.save names its archive after the file
        save_model(tmp)
    write_atomic(Path(out) / SUMMARY, json.dumps(summary, indent=2, sort_keys=False) + "\n")


def remove_outputs(out: Path) -> None:
    """Delete a finished run's files (before it is replaced by a run of another config)."""
    for name in OUTPUTS:
        (Path(out) / name).unlink(missing_ok=True)
