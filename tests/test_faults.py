"""Fault injection: damaged data, damaged checkpoints, a kill mid-write, Ctrl-C, a config edited
between interrupted runs. Each is refused or recovered with one clear line and leaves no partial
output (no summary.json, no half-written checkpoint)."""

from __future__ import annotations

import json
import logging

import pytest

from mat import atomic
from mat.data import get
from mat.train import DivergedError, RunConflictError, Trainer, load_run_config, train
from mat.train import checkpoint as ckpt
from mat.train.tasks import DataMissingError

from test_train_resume import Interrupted, interrupt_at

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def own_text(tmp_path):
    """A private copy of a tiny corpus (the session one is shared and must stay intact)."""
    return get("tiny-text", tmp_path / "data", seed=0, size=1000, eval_size=1000)


def _cfg(run_config, data_dir=None, **train_keys):
    cfg = run_config("bert", train={"max_steps": 6, "checkpoint_every": 2, "eval_every": 3, **train_keys})
    if data_dir is not None:
        cfg["data"]["dir"] = str(data_dir)
    return load_run_config(cfg)


# ------------------------------------------------------------------------------------ data
def _flip(path, at=10):
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))


def test_flipped_byte_in_data_is_refused_before_any_step(run_config, own_text, tmp_path):
    cfg = _cfg(run_config, own_text)
    train(cfg, tmp_path / "ok")  # verified once, then remembered
    _flip(own_text / "wiki.train.tokens")
    out = tmp_path / "bad"
    with pytest.raises(DataMissingError, match=r"wiki\.train\.tokens: sha256 mismatch: got [0-9a-f]{64}, expected"):
        train(cfg, out)
    assert not out.exists() or not any(out.iterdir())


def test_truncated_data_file_is_refused_by_size(run_config, own_text, tmp_path):
    path = own_text / "wiki.valid.tokens"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])
    with pytest.raises(DataMissingError, match=rf"wiki\.valid\.tokens: {size // 2} bytes, expected {size}"):
        train(_cfg(run_config, own_text), tmp_path / "run")
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("victim", ["mat-data.json", "wiki.test.tokens"])
def test_missing_manifest_or_data_file_is_refused(run_config, own_text, tmp_path, victim):
    (own_text / victim).unlink()
    with pytest.raises(DataMissingError, match=rf"{victim}: missing"):
        train(_cfg(run_config, own_text), tmp_path / "run")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_the_hash_is_remembered_per_dataset_version(run_config, own_text, monkeypatch):
    from mat.data import check

    check.check_for_training(own_text, "tiny-text")
    calls = []
    monkeypatch.setattr(check, "sha256_file", lambda p: calls.append(p) or "0" * 64)
    check.check_for_training(own_text, "tiny-text")  # same files, same manifest: sizes only
    assert calls == []


# ------------------------------------------------------------------------------ checkpoints
def _interrupted(cfg, out, monkeypatch, at_step):
    with monkeypatch.context() as m:
        interrupt_at(m, at_step)
        with pytest.raises(Interrupted):
            train(cfg, out)


def test_flipped_byte_in_checkpoint_falls_back_to_the_previous_one(run_config, tmp_path, monkeypatch, caplog):
    cfg = _cfg(run_config)
    out = tmp_path / "run"
    _interrupted(cfg, out, monkeypatch, 5)  # checkpoints at steps 2 and 4
    work = out / ".work"
    assert ckpt.load(work / ckpt.PREVIOUS)["step"] == 2
    _flip(work / ckpt.NAME, at=200)
    with pytest.raises(ckpt.CheckpointError, match="sha256 mismatch"):
        ckpt.load(work / ckpt.NAME)
    with caplog.at_level(logging.INFO, logger="mat.train"):
        train(cfg, out)
    assert any("checkpoint.pt: sha256 mismatch" in r.message and "not used" in r.message for r in caplog.records)
    assert any("resuming from step 2" in r.message for r in caplog.records)
    clean = train(cfg, tmp_path / "clean")
    assert json.loads((out / "summary.json").read_text())["final"] == clean["final"]


def test_truncated_checkpoints_restart_from_scratch_with_a_warning(run_config, tmp_path, monkeypatch, caplog):
    cfg = _cfg(run_config)
    out = tmp_path / "run"
    _interrupted(cfg, out, monkeypatch, 5)
    for name in (ckpt.NAME, ckpt.PREVIOUS):
        path = out / ".work" / name
        path.write_bytes(path.read_bytes()[:100])
    with caplog.at_level(logging.INFO, logger="mat.train"):
        summary = train(cfg, out)
    assert summary["steps"] == 6
    assert any("restarting from scratch" in r.message for r in caplog.records)
    assert not any("resuming" in r.message for r in caplog.records)


def test_kill_during_checkpoint_write_leaves_the_previous_checkpoint(run_config, tmp_path, monkeypatch):
    cfg = _cfg(run_config)
    out = tmp_path / "run"
    real_fsync = atomic.os.fsync
    calls = []

    def killed(fd):
        calls.append(fd)
        if len(calls) == 2:  # the second checkpoint (step 4): killed before the rename
            raise Interrupted("killed while writing")
        real_fsync(fd)

    with monkeypatch.context() as m:
        m.setattr(atomic.os, "fsync", killed)
        with pytest.raises(Interrupted):
            train(cfg, out)
    work = out / ".work"
    assert not atomic.temporary_files(work)
    assert ckpt.load(work / ckpt.NAME)["step"] == 2
    (work / f".{ckpt.NAME}.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # what SIGKILL would leave
    assert train(cfg, out)["steps"] == 6
    assert not work.exists()


def test_force_always_clears_resume_state(run_config, tmp_path, monkeypatch, caplog):
    cfg = _cfg(run_config)
    out = tmp_path / "run"
    _interrupted(cfg, out, monkeypatch, 5)
    (out / ".work" / ckpt.NAME).write_bytes(b"garbage")
    (out / ".work" / ckpt.PREVIOUS).unlink()
    with caplog.at_level(logging.INFO, logger="mat.train"):
        train(cfg, out, force=True)
    assert not any("resuming" in r.message or "checksum" in r.message for r in caplog.records)


def test_nan_message_names_a_checkpoint_only_if_one_exists(run_config, tmp_path, monkeypatch):
    cfg = _cfg(run_config, checkpoint_every=0)
    original = Trainer._objective

    def poisoned(self, inputs, targets):
        loss, terms = original(self, inputs, targets)
        return (loss * float("nan") if self.step == 1 else loss), terms

    monkeypatch.setattr(Trainer, "_objective", poisoned)
    with pytest.raises(DivergedError) as info:
        train(cfg, tmp_path / "run")
    assert "checkpoint.pt" not in str(info.value)
    assert "no checkpoint was written yet" in str(info.value)


# --------------------------------------------------------------------- config edited mid-run
def test_workflow_discards_resume_state_of_an_edited_config(run_config, tmp_path, monkeypatch, caplog):
    cfg = _cfg(run_config)
    out = tmp_path / "run"
    _interrupted(cfg, out, monkeypatch, 5)
    edited = {**cfg, "seed": 7}
    with pytest.raises(RunConflictError):
        train(edited, out)  # by hand: still refused, so nobody loses a run by accident
    with caplog.at_level(logging.INFO, logger="mat.train"):
        assert train(edited, out, discard_stale=True)["seed"] == 7
    assert any("discarding the unfinished run of another config" in r.message for r in caplog.records)


def test_force_removes_the_old_runs_model_file(run_config, tmp_path, monkeypatch):
    cfg = _cfg(run_config, max_steps=2)
    out = tmp_path / "run"
    train(cfg, out)
    assert (out / "model.pt").exists()
    _interrupted_forced({**cfg, "seed": 4}, out, monkeypatch)
    assert not (out / "model.pt").exists()  # nothing of the old run beside the new one
    assert not (out / "summary.json").exists()


def _interrupted_forced(cfg, out, monkeypatch):
    with monkeypatch.context() as m:
        interrupt_at(m, 1)
        with pytest.raises(Interrupted):
            train(cfg, out, force=True)


# ------------------------------------------------------------------------------------- SIGINT
def test_sigint_is_one_line_exit_130_and_the_rerun_resumes(run_config, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    cfg = run_config("bert", train={"max_steps": 4000, "checkpoint_every": 2, "eval_every": 1000, "log_every": 100})
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mat", "train", "--config", str(config), "--out", str(out)],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while not (out / ".work" / ckpt.NAME).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("python -m mat train: interrupted at step ")
    assert err.strip().splitlines()[-1].endswith("; rerun the same command to resume")
    assert not (out / "summary.json").exists()
    assert ckpt.load_latest(out / ".work", print) is not None  # a good checkpoint to resume from
