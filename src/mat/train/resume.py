"""A run folder's lifecycle before training: finished already, resumable, or to start afresh.

Plain data in, plain data out (a folder, a config, flags), so the rules read without the trainer:
- `finished_summary`: OUT/summary.json of the same config means the run is complete (nothing to
  do); of another config it is refused unless `force`, which deletes the old outputs.
- `prepare_work`: OUT/.work of the same config is resumed from its newest good checkpoint; of
  another config it is refused, or discarded with a log line (`discard_stale`: the workflow, which
  reruns a job only when its config changed); `force` always starts afresh.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from mat import atomic, run_folder
from mat.train import checkpoint as ckpt
from mat.train import distributed
from mat.train.run_config import ConfigError

log = logging.getLogger("mat.train")


class RunConflictError(ConfigError):
    """OUT already holds a run (finished or in progress) made with a different config."""


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a run resumes from, and the state it holds."""

    path: Path
    state: dict


def finished_summary(out: Path, cfg: dict, force: bool, may_delete: bool = True) -> dict | None:
    """The summary of the finished run in `out` made with `cfg` (None: train it). A finished run of
    another config raises RunConflictError unless `force`; then its outputs are deleted (by the
    process that writes, `may_delete`)."""
    done = Path(out) / run_folder.SUMMARY
    if not done.exists():
        return None
    previous = run_folder.read_summary(out)
    if run_folder.canonical_config(previous.get("config")) == run_folder.canonical_config(cfg):
        log.info("%s: this run is already complete (same config); nothing to do", done)
        return previous
    if not force:
        raise RunConflictError(
            f"{done} exists and was made with a different config; rerun with --force to replace it, "
            "or choose another --out"
        )
    if may_delete:
        run_folder.remove_outputs(out)
    return None


def prepare_work(work: Path, cfg: dict, force: bool, discard_stale: bool = False) -> ResumePoint | None:
    """The checkpoint to resume from (or None, with a fresh `work` holding the config).

    A checkpoint failing its checksum is reported and the previous one used; if none is good, the
    run restarts from scratch with a warning."""
    work = Path(work)
    if work.exists():
        same = run_folder.work_config_matches(work, cfg)
        if not same and not (force or discard_stale):
            raise RunConflictError(
                f"{work} holds an unfinished run with a different config; "
                "rerun with --force to discard it, or choose another --out"
            )
        if not same and not force:
            log.warning("%s: discarding the unfinished run of another config (resume state)", work)
        if same and not force:
            for tmp in atomic.temporary_files(work):  # a write cut short
                tmp.unlink(missing_ok=True)
            found = ckpt.load_latest(work, lambda msg: log.warning("%s", msg))
            if found is not None:
                return ResumePoint(*found)
            if ckpt.candidates(work):
                log.warning("%s: no checkpoint passes its checksum; restarting from scratch", work)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    run_folder.write_work_config(work, cfg)
    return None


def prepare_work_on_ranks(
    work: Path, cfg: dict, force: bool, discard_stale: bool, d: distributed.Dist
) -> ResumePoint | None:
    """`prepare_work` on rank 0 (the only process that writes); the other ranks get its verdict
    (an error, or the checkpoint to resume from) and then read the same checkpoint."""
    if not d.enabled:
        return prepare_work(work, cfg, force, discard_stale)
    point, verdict = None, None
    if d.main:
        try:
            point = prepare_work(work, cfg, force, discard_stale)
            verdict = ("resume", str(point.path) if point is not None else None)
        except ConfigError as exc:
            verdict = ("error", type(exc).__name__, str(exc))
    verdict = distributed.broadcast_object(verdict, d)
    if verdict[0] == "error":
        raise (RunConflictError if verdict[1] == "RunConflictError" else ConfigError)(verdict[2])
    if not d.main and verdict[1]:
        path = Path(verdict[1])
        point = ResumePoint(path, ckpt.load(path))
    return point


def last_good(work: Path) -> str:
    """How the user resumes after a divergence: the checkpoint the rerun would use, if any."""
    found = ckpt.candidates(work)
    if found:
        return f"the last good checkpoint is {found[0]}; rerun to resume from it"
    return "no checkpoint was written yet; a rerun starts from scratch"
