"""MAT's evaluation schedule read off a run config, before anything runs: at which epochs MAT
evaluates the mNTK (Algorithm 1, lines 3-14), and whether that is enough for Eq. 6 to act.

Epochs are 0-based: "starts from the 5th epoch and performs every 8 epochs" (Appendix B.1) is
`start_epoch: 4, interval: 8`, so evaluations at epochs 4, 12, 20, ... An evaluation happens at the
START of its epoch, so it needs a step of that epoch to be trained: with E epochs (fractional for a
`max_steps` run) the evaluations are the scheduled epochs e < E.

Eq. 6 compares Delta_t with Delta_{t-1} and Delta_1, so it first acts at evaluation t = 2: a run needs
at least MIN_EVALUATIONS = 3 evaluations for the temporal policy to do anything.

A `max_steps` run's epoch count needs the training set's size, known only once the data is
prepared; for the real datasets an estimate is used here (`TRAIN_SIZE`), the run's summary.json
records the real one (`steps_per_epoch`, `mat_evaluations`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from mat.policies.config import parse_method_config

MIN_EVALUATIONS = 3  # Eq. 6 needs t >= 2 (Delta_1 and Delta_{t-1})

# Training examples per epoch of the real datasets, for `max_steps` runs (generated data has none).
# WikiText: the documented training words (Merity et al. 2016, Table 1) x TOKENS_PER_WORD, our
# estimate of the WordPiece stream's length (sub-word splits plus one [SEP] per line); a sequence is
# [CLS] + seq_len - 1 stream tokens. Erring long gives fewer epochs, so the warning errs towards warning.
TRAIN_WORDS = {"wikitext2": 2_088_628, "wikitext103": 103_227_021}
TOKENS_PER_WORD = 1.15
TRAIN_IMAGES = {"cifar10": 50_000}


def evaluation_epochs(start_epoch: int, interval: int, epochs: float) -> list[int]:
    """0-based epochs at which MAT evaluates in a run of `epochs` epochs (maybe fractional)."""
    return list(range(start_epoch, math.ceil(epochs), interval))


def train_size(data: Mapping[str, Any]) -> int | None:
    """Training examples per epoch of a run's data block (estimated; None when unknown)."""
    name = data.get("name")
    if name in TRAIN_IMAGES:
        return TRAIN_IMAGES[name]
    if name in TRAIN_WORDS and data.get("seq_len"):
        return int(TRAIN_WORDS[name] * TOKENS_PER_WORD // (int(data["seq_len"]) - 1))
    return None


def run_epochs(cfg: Mapping[str, Any]) -> float | None:
    """Epochs a run config trains: `train.epochs`, or `max_steps` / steps per epoch (estimated)."""
    train = cfg.get("train", {})
    if train.get("max_steps") is None:
        return float(train["epochs"]) if train.get("epochs") is not None else None
    n = train_size(cfg.get("data", {}))
    if n is None:
        return None
    steps_per_epoch = math.ceil(n / int(train.get("batch_size", 8)))
    return int(train["max_steps"]) / steps_per_epoch


def on_mat_schedule(method: Mapping[str, Any]) -> bool:
    """Whether a `method:` block evaluates the mNTK on MAT's schedule (Algorithm 1: from
    `start_epoch`, every `interval` epochs): read off its registered config's fields, so a new
    MAT-like method is recognised without being listed here."""
    m = parse_method_config(method)
    return hasattr(m, "start_epoch") and hasattr(m, "interval")


def mat_evaluations(cfg: Mapping[str, Any]) -> list[int] | None:
    """The epochs of MAT's evaluations in a resolved run config; None for another method or when the
    run's length is unknown. The method block's defaults are the policies' (`parse_method_config`)."""
    method = cfg.get("method", {})
    if not on_mat_schedule(method):
        return None
    epochs = run_epochs(cfg)
    if epochs is None:
        return None
    m = parse_method_config(method)
    return evaluation_epochs(m.start_epoch, m.interval, epochs)


def schedule_warnings(cfg: Mapping[str, Any]) -> list[str]:
    """What a run config's schedule keeps MAT from doing: fewer than MIN_EVALUATIONS evaluations
    (Eq. 6 never or barely acts), or a prune epoch the run never reaches."""
    evals = mat_evaluations(cfg)
    if evals is None:
        return []
    m = parse_method_config(cfg["method"])
    epochs = run_epochs(cfg)
    out = []
    if len(evals) < MIN_EVALUATIONS:
        out.append(
            f"{cfg.get('name') or 'run'}: MAT evaluates {len(evals)} time(s) (epochs {evals}: start_epoch "
            f"{m.start_epoch}, interval {m.interval}, about {epochs:.1f} epochs); Eq. 6 needs at least "
            f"{MIN_EVALUATIONS} (t >= 2) to stop any module"
        )
    if getattr(m, "prune_epoch", None) is not None and m.prune_epoch >= math.ceil(epochs):
        out.append(f"{cfg.get('name') or 'run'}: prune_epoch {m.prune_epoch} is never reached (about {epochs:.1f} epochs)")
    return out
