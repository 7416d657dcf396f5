"""Algorithm 1, line 3 (and B.1, 'MAT first randomly samples 64 data samples'): one set of S
inputs, MLM masks included, drawn once per run and reused at every mNTK evaluation. And each run
records its MAT evaluations (summary.json, mntk.csv)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from mat.train import measure
from mat.train.loop import Trainer
from mat.train.run_config import load_run_config


def _measured_inputs(run_config, tmp_path, monkeypatch, **ntk) -> list[torch.Tensor]:
    seen = []
    original = measure.mntk

    def recording(model, inputs, *args):
        seen.append(inputs.detach().clone())
        return original(model, inputs, *args)

    monkeypatch.setattr(measure, "mntk", recording)
    cfg = run_config("bert", {"name": "mat", "start_epoch": 0, "interval": 1},
                     train={"batch_size": 32, "max_steps": 12, "eval_every": 12}, ntk={"samples": 4, "top_k": 4, **ntk})
    trainer = Trainer(load_run_config(cfg), tmp_path / "run")
    trainer.run()
    run = tmp_path / "run"
    # 12 steps at 3 per epoch: MAT evaluates at the start of epochs 0-3 (t = 0..3)
    assert json.loads((run / "summary.json").read_text())["mat_evaluations"] == {"count": 4, "epochs": [0, 1, 2, 3]}
    mntk = pd.read_csv(run / "mntk.csv")
    assert mntk.groupby("epoch").evaluation.unique().map(list).to_dict() == {0: [0], 1: [1], 2: [2], 3: [3]}
    assert len(seen) >= 2, f"expected at least two MAT evaluations, got {len(seen)}"
    return seen


@pytest.mark.usefixtures("one_thread")
def test_every_evaluation_of_a_run_sees_the_same_inputs_and_masks(run_config, tmp_path, monkeypatch):
    seen = _measured_inputs(run_config, tmp_path, monkeypatch)
    for later in seen[1:]:
        assert torch.equal(later, seen[0])


@pytest.mark.usefixtures("one_thread")
def test_resample_true_draws_new_inputs_at_every_evaluation(run_config, tmp_path, monkeypatch):
    seen = _measured_inputs(run_config, tmp_path, monkeypatch, resample=True)
    assert not torch.equal(seen[1], seen[0])
