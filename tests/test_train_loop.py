"""The loop's contract with a policy (what it is asked, in which order, with which measurements),
early stopping when the policy is finished (Algorithm 1, line 2), and the task losses."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mat.policies.base import Decision
from mat.train import Trainer, load_run_config
from mat.train.tasks import cross_entropy

pytestmark = pytest.mark.usefixtures("one_thread")


class RecordingPolicy:
    """Wants SNIP at epoch 0 and the mNTK at epoch 1, trains everything, is finished from epoch 2."""

    def __init__(self, cfg, partition, seed, steps_per_epoch):  # build_policy's signature
        self.partition, self.n = partition, len(partition)
        self.calls, self.values, self.epoch = [], {}, -1

    def wants(self, epoch):
        self.calls.append(("wants", epoch))
        return {0: {"snip"}, 1: {"mntk"}}.get(epoch, set())

    def observe(self, epoch, name, values):
        self.calls.append(("observe", epoch, name))
        self.values[name] = values

    def start_epoch(self, epoch):
        self.calls.append(("start_epoch", epoch))
        self.epoch = epoch

    def decide(self, step):
        self.calls.append(("decide", step))
        return Decision.everyone(self.n)

    def finished(self):
        return self.epoch >= 2

    def state_dict(self):
        return {"epoch": self.epoch}

    def load_state_dict(self, state):
        self.epoch = state["epoch"]


def test_policy_is_asked_in_algorithm_order_and_a_finished_policy_ends_the_run(run_config, tmp_path, monkeypatch):
    import mat.policies

    monkeypatch.setattr(mat.policies, "build_policy", RecordingPolicy)
    cfg = load_run_config(run_config("bert", train={"max_steps": 30}, ntk={"samples": 5}))
    trainer = Trainer(cfg, tmp_path / "run")
    summary = trainer.run()
    policy = trainer.policy
    spe = trainer.steps_per_epoch
    assert spe == 3  # 92 sequences of 32 tokens, batches of 32

    expected = [("wants", 0), ("observe", 0, "snip"), ("start_epoch", 0)]
    expected += [("decide", s) for s in range(0, spe)]
    expected += [("wants", 1), ("observe", 1, "mntk"), ("start_epoch", 1)]
    expected += [("decide", s) for s in range(spe, 2 * spe)]
    expected += [("wants", 2), ("start_epoch", 2)]  # then finished(): no step of epoch 2
    assert policy.calls == expected

    # The measurements handed over: SNIP per module (sums to 1), the mNTK of every module on S inputs.
    snip = policy.values["snip"]
    assert snip.shape == (len(trainer.partition),) and torch.isclose(snip.sum(), torch.tensor(1.0, dtype=snip.dtype))
    eig = policy.values["mntk"]
    assert list(eig) == trainer.partition.names
    for values in eig.values():
        assert values.shape == (5,) and (values[:-1] >= values[1:]).all() and (values >= 0).all()

    # Early stop: the summary says why, the last epoch and evaluation are logged at the stop.
    assert summary["steps"] == 2 * spe and summary["stopped_early"]["stopped"] is True
    assert "no module left to train (at step 6, epoch 2)" in summary["stopped_early"]["why"]
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics.step.max() == 2 * spe and set(metrics[metrics.step == 2 * spe].split) == {"train", "valid", "test"}
    assert sorted(set(pd.read_csv(tmp_path / "run" / "modules.csv").epoch)) == [0, 1]
    mntk = pd.read_csv(tmp_path / "run" / "mntk.csv")
    assert set(mntk.epoch) == {1} and (mntk.step == spe).all()  # only where measured, no log schedule
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 2 * spe


def test_task_loss_is_cross_entropy_over_counted_targets_only():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[1, 3], labels[1, 4] = 3, 0, 6
    out = cross_entropy(logits, labels)
    picked = torch.stack([logits[0, 1], logits[1, 3], logits[1, 4]])
    target = torch.tensor([3, 0, 6])
    assert torch.allclose(out.loss, F.cross_entropy(picked, target))
    assert torch.allclose(out.loss_sum, F.cross_entropy(picked, target, reduction="sum"))
    assert int(out.count) == 3 and int(out.correct) == int((picked.argmax(-1) == target).sum())
    # A batch with no masked token: loss 0 (not the NaN of a mean over nothing, which would stop the run).
    none = cross_entropy(logits, torch.full((2, 5), -100))
    assert float(none.loss) == 0.0 and int(none.count) == 0
