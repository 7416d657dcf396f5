"""benchmarks/mat_overhead.py: its plan of MAT's evaluations and their FLOPs is what a real run does."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mat.models import build_model, build_partition
from mat.ntk import module_grams
from mat.train import load_run_config, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def overhead():
    """benchmarks/mat_overhead.py loaded from its file (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("benchmark_mat_overhead", ROOT / "benchmarks" / "mat_overhead.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_meta_count_equals_the_count_on_a_real_model(overhead):
    cfg = {"arch": "vgg16", "size": "micro"}
    meta, n = overhead.mntk_flops(cfg, ["filter"], (4, 3, 32, 32), text=False, chunk=2)
    torch.manual_seed(0)
    model = build_model(cfg)
    part = build_partition(model, ["filter"])
    with FlopCounterMode(display=False) as counter:
        module_grams(model, torch.randn(4, 3, 32, 32), part, chunk_size=2)
    assert meta == counter.get_total_flops() > 0 and n == len(part)


def test_planned_evaluations_and_flops_are_what_a_mat_run_spends(overhead, run_config, tmp_path, one_thread):
    method = {"name": "mat", "start_epoch": 1, "interval": 2, "alpha": 0.5}
    cfg = load_run_config(run_config("bert", method, train={"max_steps": 30}))
    summary = train(cfg, tmp_path / "run")
    spe, steps = summary["steps_per_epoch"], summary["steps"]
    model_cfg = json.loads((tmp_path / "run" / "summary.json").read_text())["model"]
    epochs = overhead.evaluation_epochs(cfg, model_cfg, steps, spe)
    assert epochs == [e for e in range(-(-steps // spe)) if e >= 1 and (e - 1) % 2 == 0] and len(epochs) >= 2

    logged = pd.read_csv(tmp_path / "run" / "mntk.csv")
    assert sorted(logged[logged.information.notna()].epoch.unique()) == epochs  # what the policy measured
    shape = (cfg["ntk"]["samples"], cfg["data"]["seq_len"])
    per_eval, _ = overhead.mntk_flops(model_cfg, list(cfg["partition"]), shape, text=True, chunk=cfg["ntk"]["chunk_size"],
                                      memory_gb=cfg["ntk"]["memory_gb"])
    last = pd.read_csv(tmp_path / "run" / "metrics.csv").iloc[-1]
    assert last.flops_mntk == len(epochs) * per_eval
