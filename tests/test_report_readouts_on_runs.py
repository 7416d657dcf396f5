"""The report's readouts on logs a real (micro) run wrote: the per-epoch training accuracy and the
compute at epoch ends (Table 3), MAT's first evaluation epoch (Figure 5), and the paper's accounting
of compute seeing the heads MAT froze."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mat.report import head_training_figure as ht
from mat.report import vision_measures as vm
from mat.report.run_logs import read_modules
from mat.report.runs import RunMetrics
from mat.train import load_run_config, train

MAT = {"name": "mat", "start_epoch": 1, "interval": 1, "alpha": 0.9}


def _run(out) -> RunMetrics:
    return RunMetrics("mat", 0, out, pd.read_csv(out / "metrics.csv"), json.loads((out / "summary.json").read_text()))


def test_epoch_readouts_on_a_real_run(run_config, tmp_path):
    """Windows of 5 steps across epochs of `spe` steps; evaluations at every epoch end give the exact
    compute there, which the readout (interpolated between train rows) must reproduce."""
    probe = load_run_config(run_config("vgg16", train={"max_steps": 1}))
    out0 = tmp_path / "probe"
    spe = train(probe, out0)["steps_per_epoch"]
    assert spe % 5, "the test needs windows that straddle epoch boundaries"
    cfg = load_run_config(run_config("vgg16", MAT, train={"max_steps": 3 * spe, "log_every": 5, "eval_every": spe,
                                                           "checkpoint_every": 0}))
    out = tmp_path / "run"
    train(cfg, out)
    run = _run(out)
    ep = vm.epoch_train_accuracy(run)
    assert ep["epoch"].tolist() == [0, 1, 2] and ep["steps"].tolist() == [spe] * 3
    tests = run.split("test")
    # only the epoch ends with no train row there are interpolated; all must meet the evaluations' compute
    assert ep["flops"].tolist() == pytest.approx(tests["flops_total_noemb"].tolist(), rel=1e-9)
    # the epoch mean lies within its windows' range
    train_rows = run.split("train")
    assert ep["accuracy"].between(train_rows["accuracy"].min(), train_rows["accuracy"].max()).all()


def test_first_evaluation_and_paper_accounting_on_a_real_mat_run(run_config, tmp_path):
    cfg = load_run_config(run_config("bert", MAT, train={"max_steps": 40, "eval_every": 20}))
    out = tmp_path / "run"
    summary = train(cfg, out)
    spe = summary["steps_per_epoch"]
    first = ht.first_evaluation_epoch(out)
    modules = read_modules(out)
    warm = modules[modules["epoch"] < first]
    assert not warm.empty and (warm["steps_active"] == warm["steps"]).all()  # warm-up: every head trains
    shares = ht.epochs_trained(modules, first_epoch=first)
    assert (shares["epochs"] == modules["epoch"].nunique() - first).all()
    m = pd.read_csv(out / "metrics.csv")
    frozen = (modules["steps_active"] < modules["steps"]).any()
    last = m.iloc[-1]
    assert last["flops_paper_dense"] == 3 * last["flops_fwd"]
    assert frozen and spe > 0  # alpha 0.9: MAT freezes most heads from its first evaluation on
    assert last["flops_paper_estimate"] < last["flops_paper_dense"]  # the paper's accounting sees it
