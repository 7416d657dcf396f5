"""Every model x every method trains a few steps through the one loop and writes the four outputs
with the documented columns; the per-module accounting matches what each method promises."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from mat.models import build_model
from mat.train import load_run_config, train

pytestmark = pytest.mark.usefixtures("one_thread")

METRICS = ["step", "epoch", "split", "loss", "accuracy", "flops_fwd", "flops_bwd", "flops_mntk", "flops_total",
           "flops_total_noemb", "flops_paper_estimate", "flops_paper_dense", "flops_logging", "wall_seconds"]
MODULES = ["epoch", "module", "kind", "layer", "index", "steps_active", "steps", "pruned"]
TOP_K = 4
MNTK = (["epoch", "step", "partition", "module", "kind", "layer", "index", "lambda_max", "lambda_min"]
        + [f"eig_{i}" for i in range(TOP_K)] + ["effective_rank", "threshold", "information", "stopped", "evaluation"])
SUMMARY_KEYS = {"config", "seed", "versions", "git_commit", "hardware", "steps", "epochs", "stopped_early", "final",
                "compute", "wall_seconds"}

METHODS = {
    "vanilla": {"name": "vanilla"},
    "rand": {"name": "rand", "fraction": 0.5},
    "multirate": {"name": "multirate", "fraction": 0.5, "k": 5},
    "mat": {"name": "mat", "start_epoch": 0, "interval": 1, "alpha": 0.5},
}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("arch", ["bert", "switch", "vgg16"])
def test_each_model_and_method_writes_the_documented_outputs(arch, method, run_config, tmp_path):
    cfg = load_run_config(run_config(arch, METHODS[method], ntk={"log_every": 1, "log_kinds": ["layer"], "top_k": TOP_K}))
    out = tmp_path / "run"
    summary = train(cfg, out)

    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "mntk.csv", "model.pt", "modules.csv", "summary.json"]
    # The final weights load back, strictly, into a model built from the summary's model config.
    fresh = build_model(json.loads((out / "summary.json").read_text())["model"])
    fresh.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    metrics, modules, mntk = (pd.read_csv(out / f) for f in ("metrics.csv", "modules.csv", "mntk.csv"))
    assert list(metrics.columns) == METRICS
    assert list(modules.columns) == MODULES
    assert list(mntk.columns) == MNTK
    assert SUMMARY_KEYS <= set(json.loads((out / "summary.json").read_text()))

    # metrics.csv: train every log_every=2 steps, evaluation every 3 steps and at the end.
    eval_splits = ["test"] if arch == "vgg16" else ["test", "valid"]
    assert metrics[metrics.split == "train"].step.tolist() == [2, 4, 6]
    for split in eval_splits:
        assert metrics[metrics.split == split].step.tolist() == [3, 6]
    assert sorted(set(metrics.split)) == sorted(["train", *eval_splits])
    assert metrics.loss.map(math.isfinite).all()
    assert metrics.accuracy.between(0, 1).all()
    # Compute columns: cumulative, with the paper's estimator relations (backward = 2 x forward).
    by_step = metrics.drop_duplicates("step").sort_values("step")
    assert by_step.flops_total.is_monotonic_increasing and (by_step.flops_fwd > 0).all()
    # Measured backward (mat.flops): at most the full 2x forward, strictly less where modules were
    # frozen (no weight gradient for frozen heads/filters/experts); DeepSpeed's estimator is 3x forward,
    # the paper's accounting applied to freezing at most that, less where modules were frozen.
    assert (metrics.flops_paper_dense == 3 * metrics.flops_fwd).all()
    assert (metrics.flops_paper_estimate <= metrics.flops_paper_dense).all()
    if method in ("rand", "multirate"):
        assert metrics.flops_paper_estimate.iloc[-1] < metrics.flops_paper_dense.iloc[-1]
    assert (metrics.flops_bwd <= 2 * metrics.flops_fwd).all()
    if method in ("rand", "multirate"):
        assert metrics.flops_bwd.iloc[-1] < 2 * metrics.flops_fwd.iloc[-1]
    assert (metrics.flops_total == metrics.flops_fwd + metrics.flops_bwd + metrics.flops_mntk).all()
    assert (metrics.flops_paper_dense == 3 * metrics.flops_fwd).all()  # no FLOPs inside embeddings
    # The mNTK is taken every epoch from epoch 0: MAT's is its own computation (in the total); every
    # other mNTK here (the logged layers, all of a non-MAT run's) is logging, outside the total.
    assert (metrics.flops_logging > 0).all()
    if method == "mat":
        assert (metrics.flops_mntk > 0).all()
    else:
        assert (metrics.flops_mntk == 0).all()
    assert metrics.wall_seconds.is_monotonic_increasing

    # modules.csv: one row per (epoch, module); the accounting matches each method's promise.
    n_modules = modules.module.nunique()
    spe = summary["steps_per_epoch"]
    epochs = math.ceil(6 / spe)
    assert len(modules) == epochs * n_modules
    per_epoch = modules.groupby("epoch").steps.first()
    assert per_epoch.sum() == 6 and (per_epoch == [min(spe, 6 - e * spe) for e in range(epochs)]).all()
    assert ((modules.steps_active >= 0) & (modules.steps_active <= modules.steps)).all()
    assert not modules.pruned.any()
    if method == "vanilla":
        assert (modules.steps_active == modules.steps).all()
    elif method == "rand":  # a fixed random half of each layer's modules for a whole epoch
        assert modules.steps_active.isin([0]).sum() > 0
        assert (modules.steps_active.isin([0]) | (modules.steps_active == modules.steps)).all()
        for _, group in modules.groupby(["epoch", "kind", "layer"]):
            assert (group.steps_active > 0).sum() == max(1, round(0.5 * len(group)))
    elif method == "multirate":  # slow modules move only at steps s with s % 5 == 4
        for epoch, group in modules.groupby("epoch"):
            slow = sum(1 for s in range(epoch * spe, min(6, (epoch + 1) * spe)) if s % 5 == 4)
            assert group.steps_active.isin([slow, group.steps.iloc[0]]).all()
            assert (group.steps_active == slow).any()

    # mntk.csv: every epoch, the method's partition and the layers; eigenvalues in order.
    label = "+".join(cfg["partition"])
    assert sorted(set(mntk.partition)) == sorted({label, "layer"})
    assert sorted(set(mntk.epoch)) == list(range(epochs))
    assert (mntk.step == mntk.epoch * spe).all()
    assert len(mntk[mntk.partition == label]) == epochs * n_modules
    assert (mntk.eig_0 == mntk.lambda_max).all()
    assert (mntk.lambda_max >= mntk.lambda_min).all() and (mntk.lambda_min >= 0).all()
    assert (mntk[[f"eig_{i}" for i in range(TOP_K)]].diff(axis=1).iloc[:, 1:] <= 0).all().all()
    heads = mntk[mntk.kind == "head"]
    assert heads.effective_rank.notna().all() and mntk[mntk.kind != "head"].effective_rank.isna().all()
    own = mntk[mntk.partition == label]
    if method == "mat":  # MAT's own view of each module, from its report
        assert own.threshold.notna().all() and own.information.notna().all() and own.stopped.notna().all()
        thresholds = own.groupby(["epoch", "kind"]).threshold.nunique()
        assert (thresholds == 1).all()  # Eq. 4: one threshold per kind and evaluation
        info = own.information.astype(bool)
        assert (info == (own.lambda_max >= own.threshold)).all()  # Eq. 5
    else:
        assert own.threshold.isna().all() and own.information.isna().all()
    assert mntk[mntk.partition == "layer"].threshold.isna().all()

    # summary.json: the resolved config and the results read back from metrics.csv.
    assert summary["config"] == cfg and summary["steps"] == 6 and summary["stopped_early"]["stopped"] is False
    mat_evals = {"count": epochs, "epochs": list(range(epochs))} if method == "mat" else None
    assert summary["mat_evaluations"] == mat_evals  # MAT evaluates at the start of every epoch here
    evals = metrics[metrics.split == eval_splits[-1]]
    if arch == "vgg16":
        best = evals.loc[evals.accuracy.idxmax()]
        assert summary["best_test_accuracy"]["accuracy"] == best.accuracy
        assert "best_valid" not in summary
    else:
        best = evals.loc[evals.loss.idxmin()]
        assert summary["best_valid"]["loss"] == best.loss and summary["best_valid"]["step"] == best.step
        test_at = metrics[(metrics.split == "test") & (metrics.step == best.step)].iloc[0]
        assert summary["best_valid"]["test_loss"] == test_at.loss
    assert summary["compute"]["flops_total"] == metrics.flops_total.iloc[-1]


def test_snip_prunes_modules_out_of_the_forward_pass(run_config, tmp_path):
    """SNIP (Table 5): the least sensitive half is pruned at epoch 0: zero slices, never updated."""
    import torch

    from mat.train import Trainer

    cfg = load_run_config(run_config("bert", {"name": "snip", "prune_ratio": 0.5}, train={"max_steps": 4}))
    trainer = Trainer(cfg, tmp_path / "run")
    summary = trainer.run()
    modules = pd.read_csv(tmp_path / "run" / "modules.csv")
    pruned = modules[modules.pruned.astype(bool)]
    assert len(pruned) == len(modules) // 2 and (pruned.steps_active == 0).all()
    kept = modules[~modules.pruned.astype(bool)]
    assert (kept.steps_active == kept.steps).all()
    params = dict(trainer.model.named_parameters())
    for m in trainer.partition.modules:
        zero = all(torch.count_nonzero(params[s.param][s.index(params[s.param].dim())]) == 0 for s in m.slices)
        assert zero == (m.name in set(pruned.module))
    assert summary["steps"] == 4
