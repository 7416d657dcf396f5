"""Same seed -> the same outputs; an interrupted run, rerun, ends with exactly the outputs of an
uninterrupted one; a NaN loss stops the run and keeps the last good checkpoint; a finished run is
recognised, and a different config is refused unless forced."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from mat.train import DivergedError, RunConflictError, Trainer, load_run_config, train
from mat.train import checkpoint as ckpt

pytestmark = pytest.mark.usefixtures("one_thread")
CSVS = ("metrics.csv", "mntk.csv", "modules.csv")


class Interrupted(Exception):
    """Stands for a killed process."""


def interrupt_at(monkeypatch, at_step: int) -> None:
    original = Trainer._train_step

    def step(self, s, epoch):
        if s == at_step:
            raise Interrupted(f"killed before step {s}")
        return original(self, s, epoch)

    monkeypatch.setattr(Trainer, "_train_step", step)


def assert_same_outputs(a, b) -> None:
    """Bitwise-equal CSVs, all columns but wall_seconds."""
    for name in CSVS:
        x, y = pd.read_csv(a / name, dtype=str), pd.read_csv(b / name, dtype=str)
        if name == "metrics.csv":
            x, y = x.drop(columns="wall_seconds"), y.drop(columns="wall_seconds")
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=name)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for key in ("steps", "final", "compute", "stopped_early", "config"):
        assert sa[key] == sb[key], key


CASES = {
    # BERT with dropout (global RNG), MAT (policy state, mNTK every epoch), AdamW moments, linear decay.
    "bert-mat": ("bert", {"name": "mat", "start_epoch": 1, "interval": 1, "alpha": 0.5},
                 {"name": "adamw", "lr": 1.0e-3, "schedule": "linear"}),
    # VGG with augmentation and BatchNorm statistics, Multirate, SGD momentum, step schedule.
    "vgg16-multirate": ("vgg16", {"name": "multirate", "k": 2},
                        {"name": "sgd", "lr": 0.05, "momentum": 0.9, "schedule": "step"}),
}


def _config(run_config, case: str, **train_keys) -> dict:
    arch, method, optim = CASES[case]
    train_cfg = {"max_steps": 9, "checkpoint_every": 4, "eval_every": 3, "log_every": 2, **train_keys}
    return load_run_config(run_config(arch, method, optim=optim, train=train_cfg, ntk={"log_every": 2}))


def test_same_seed_gives_identical_outputs_and_another_seed_does_not(run_config, tmp_path):
    cfg = _config(run_config, "bert-mat")
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b")
    assert_same_outputs(tmp_path / "a", tmp_path / "b")
    train({**cfg, "seed": 1}, tmp_path / "c")
    a, c = (pd.read_csv(tmp_path / d / "metrics.csv") for d in ("a", "c"))
    assert not a.loss.equals(c.loss)


@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_run_resumes_to_the_uninterrupted_outputs(case, run_config, tmp_path, monkeypatch):
    cfg = _config(run_config, case)
    train(cfg, tmp_path / "straight")

    out = tmp_path / "resumed"
    with monkeypatch.context() as m:
        interrupt_at(m, 6)  # after the checkpoint at step 4 and rows for steps 5-6 (and epoch 2's start)
        with pytest.raises(Interrupted):
            train(cfg, out)
    # Nothing final was published; the resume state is intact in OUT/.work.
    assert sorted(p.name for p in out.iterdir()) == [".work"]
    state = ckpt.load(out / ".work" / "checkpoint.pt")
    assert state["step"] == 4
    rows_now = len(pd.read_csv(out / ".work" / "metrics.csv"))
    assert rows_now > state["rows"]["metrics.csv"]  # rows after the checkpoint exist and must go

    train(cfg, out)
    assert_same_outputs(tmp_path / "straight", out)
    assert not (out / ".work").exists()


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(run_config, tmp_path, monkeypatch):
    cfg = _config(run_config, "bert-mat")
    out = tmp_path / "run"
    original = Trainer._objective

    def poisoned(self, inputs, targets):
        loss, terms = original(self, inputs, targets)
        return (loss * math.nan if self.step == 7 else loss), terms

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_objective", poisoned)
        with pytest.raises(DivergedError, match=r"nan at step 7 \(epoch 2\)"):
            train(cfg, out)
    assert not (out / "summary.json").exists()
    state = ckpt.load(out / ".work" / "checkpoint.pt")  # weights_only=True
    assert state["step"] == 4  # the last checkpoint before the bad step; none written after it
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())

    # Without the poison, the rerun resumes from that checkpoint and matches a clean run.
    train(cfg, out)
    train(cfg, tmp_path / "clean")
    assert_same_outputs(tmp_path / "clean", out)


def test_finished_run_is_recognised_and_a_different_config_refused_unless_forced(run_config, tmp_path, monkeypatch):
    cfg = _config(run_config, "bert-mat", max_steps=3)
    out = tmp_path / "run"
    first = train(cfg, out)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must not train again")

    with monkeypatch.context() as m:
        m.setattr(Trainer, "__init__", no_training)
        assert train(cfg, out) == first
        other = {**cfg, "seed": 5}
        with pytest.raises(RunConflictError, match="different config.*--force"):
            train(other, out)
    forced = train(other, out, force=True)
    assert forced["seed"] == 5
    assert json.loads((out / "summary.json").read_text())["config"]["seed"] == 5


def test_unfinished_run_with_another_config_is_refused_unless_forced(run_config, tmp_path, monkeypatch):
    cfg = _config(run_config, "bert-mat")
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        interrupt_at(m, 5)
        with pytest.raises(Interrupted):
            train(cfg, out)
    other = {**cfg, "seed": 3}
    with pytest.raises(RunConflictError, match="unfinished run with a different config"):
        train(other, out)
    assert train(other, out, force=True)["seed"] == 3


def test_non_finite_weights_are_never_checkpointed(run_config, tmp_path, monkeypatch):
    """A finite loss can come with an update that overflows the weights: the checkpoint due at
    that step is refused and the previous one kept."""
    cfg = _config(run_config, "bert-mat")
    original = Trainer._train_step

    def overflow(self, s, epoch):
        original(self, s, epoch)
        if s == 7:  # the 8th step, right before the checkpoint due at step 8
            with torch.no_grad():
                next(iter(self.params.values())).fill_(math.inf)

    monkeypatch.setattr(Trainer, "_train_step", overflow)
    with pytest.raises(DivergedError, match=r"non-finite by step 8 \(epoch 2\)"):
        train(cfg, tmp_path / "run")
    assert ckpt.load(tmp_path / "run" / ".work" / "checkpoint.pt")["step"] == 4
