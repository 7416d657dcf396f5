"""The compute meter (forward FLOPs measured once per shape, the paper's backward estimate) and the
resumable CSV logs."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

from mat.partition import layer_partition
from mat.policies.base import Decision
from mat.train.compute import ComputeMeter
from mat.train.logs import CsvLog


class MLP(nn.Module):
    def __init__(self, sizes=(128, 256, 256, 10)):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.norm = nn.BatchNorm1d(sizes[1])
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = self.drop(self.norm(self.layers[0](x)))
        for layer in self.layers[1:]:
            x = layer(torch.relu(x))
        return x


def _meter(model, **kw):
    return ComputeMeter(model, layer_partition(model, ["layers.0", "layers.1", "layers.2"]), **kw)


def test_forward_flops_match_the_analytic_count_and_the_totals_follow_the_estimator():
    model = MLP()
    meter = _meter(model)
    x = torch.randn(32, 128)
    analytic = 2 * 32 * (128 * 256 + 256 * 256 + 256 * 10)  # 2 FLOPs per multiply-add
    assert meter.forward_flops(x) == (analytic, 0) == (6_455_296, 0)
    everyone = Decision.everyone(3)
    meter.step(x, everyone)
    meter.step(x, everyone)
    meter.step(x[:5], everyone)  # a last, smaller batch: measured separately
    fwd = 2 * analytic + 2 * 5 * (128 * 256 + 256 * 256 + 256 * 10)
    meter.mntk(x[:4])  # 4 per-sample gradients: forward + backward each
    mntk = 3 * 2 * 4 * (128 * 256 + 256 * 256 + 256 * 10)
    assert meter.totals() == {
        "flops_fwd": fwd,
        "flops_bwd": 2 * fwd,
        "flops_mntk": mntk,
        "flops_total": 3 * fwd + mntk,
        "flops_total_noemb": 3 * fwd + mntk,
        "flops_paper_estimate": 3 * fwd,
    }


def test_embedding_share_is_left_out_of_noemb():
    class Lookup(nn.Linear):
        """Stands in for an embedding layer that does arithmetic (nn.Embedding itself counts 0)."""

    model = MLP()
    model.layers[0] = Lookup(128, 256)
    meter = _meter(model, embedding_types=(Lookup,))
    x = torch.randn(8, 128)
    emb = 2 * 8 * 128 * 256
    total = emb + 2 * 8 * (256 * 256 + 256 * 10)
    assert meter.forward_flops(x) == (total, emb)
    meter.step(x, Decision.everyone(3))
    t = meter.totals()
    assert t["flops_total"] == 3 * total and t["flops_total_noemb"] == 3 * (total - emb)
    assert t["flops_paper_estimate"] == 3 * (total - emb)


def test_counting_changes_nothing_the_run_computes():
    """No random draws, no BatchNorm statistics, the train/eval mode restored: a resumed run that
    re-measures a shape stays bitwise equal to one that did not."""
    torch.manual_seed(0)
    model = MLP().train()
    meter = _meter(model)
    x = torch.randn(16, 128)
    rng = torch.get_rng_state()
    stats = [b.clone() for b in model.norm.buffers()]
    meter.forward_flops(x)
    assert model.training
    assert torch.equal(rng, torch.get_rng_state())  # dropout drew nothing
    assert all(torch.equal(a, b) for a, b in zip(stats, model.norm.buffers()))
    model(x)  # whereas a training forward does move the statistics: the check above can fail
    assert not torch.equal(stats[0], model.norm.running_mean)


def test_meter_state_round_trips():
    model = MLP()
    a = _meter(model)
    x = torch.randn(4, 128)
    a.step(x, Decision.everyone(3))
    a.mntk(x)
    b = _meter(model)
    b.load_state_dict(a.state_dict())
    assert b.totals() == a.totals()
    b.step(x, Decision.everyone(3))
    a.step(x, Decision.everyone(3))
    assert b.totals() == a.totals()


# ------------------------------------------------------------------------------------------ logs
def test_csv_log_writes_exact_floats_and_truncates_back_on_resume(tmp_path):
    path = tmp_path / "m.csv"
    values = [0.1, 1 / 3, 2.5e-300, float("nan"), None]
    with CsvLog(path, ["i", "x", "flag"]) as log:
        for i, v in enumerate(values):
            log.write({"i": i, "x": v, "flag": i % 2 == 0})
        assert log.rows == 5
    rows = list(csv.DictReader(open(path)))
    assert [float(r["x"]) for r in rows[:3]] == values[:3]  # repr round-trips bitwise
    assert rows[3]["x"] == "" and rows[4]["x"] == "" and rows[0]["flag"] == "true"

    with CsvLog(path, ["i", "x", "flag"], keep_rows=2) as log:  # resume from a checkpoint of 2 rows
        assert log.rows == 2
        log.write({"i": 9, "x": 1.0})
    assert [r["i"] for r in csv.DictReader(open(path))] == ["0", "1", "9"]

    with pytest.raises(ValueError, match="fewer than the 7"):
        CsvLog(path, ["i", "x", "flag"], keep_rows=7)
    with pytest.raises(ValueError, match="does not match the expected columns"):
        CsvLog(path, ["i", "y", "flag"], keep_rows=1)
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        CsvLog(tmp_path / "gone.csv", ["i"], keep_rows=3)
    with CsvLog(path, ["i", "x", "flag"]) as log, pytest.raises(KeyError, match="unknown columns"):
        log.write({"j": 1})
