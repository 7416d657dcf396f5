"""mNTK within a memory budget (mat.ntk_budget): the passes give the single pass's Grams, each pass
holds no more per-sample gradient bytes, cached boundaries and kept activations than the budget, an impossible budget is a config error,
and a MAT run with a forcing budget logs what it logs without one."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from mat import ntk
from mat.models import build_model, build_partition
from mat.ntk_budget import GB, NtkBudgetError, plan_passes

S = 6
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def setup(micro_model):
    return lambda arch: micro_model(arch, S)


def _tightest_budget(model, part, sample, s: int = S) -> float:
    """About the smallest budget in GB the planner accepts for `s` samples shaped like `sample`,
    reserve for cached boundaries and kept activations included: forces many passes."""
    lo, hi = 1, 10**9  # bytes
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            ntk.passes(model, part, s, mid / GB, sample=sample)
            hi = mid
        except NtkBudgetError:
            lo = mid
    return hi / GB


def _one_layer_budget(model, part) -> float:
    """The smallest budget in GB that every layer fits alone: forces about one pass per layer."""
    params = dict(model.named_parameters())
    layers: dict[str, list[int]] = {}
    for n in part.param_names:
        layers.setdefault(n.rpartition(".")[0], []).append(params[n].numel())
    return max(4 * S * (sum(v) + max(v)) for v in layers.values()) / GB


@pytest.mark.parametrize("arch", ["bert", "switch", "vgg16"])
def test_budgeted_passes_equal_the_single_pass_and_stay_within_the_budget(arch, setup):
    model, x, part = setup(arch)
    single = []
    one = ntk.module_grams(model, x, part, chunk_size=4, memory_gb=None, pass_bytes=single)
    budget = _tightest_budget(model, part, x[:1])
    held: list[int] = []
    many = ntk.module_grams(model, x, part, chunk_size=4, memory_gb=budget, pass_bytes=held)
    assert len(single) == 1 and len(held) >= 3
    assert max(held) <= budget * GB  # what each pass allocated for per-sample gradients
    assert sum(held) == single[0]  # every owned parameter formed exactly once
    assert ((many - one).abs().max() / one.abs().max()).item() <= 1e-6


@pytest.mark.parametrize("arch", ["bert", "switch", "vgg16"])
def test_the_budget_covers_cached_boundaries_and_kept_activations(arch, setup):
    model, x, part = setup(arch)
    budget = _tightest_budget(model, part, x[:1])
    grads: list[int] = []
    held: dict = {}
    ntk.module_grams(model, x, part, chunk_size=4, memory_gb=budget, pass_bytes=grads, held=held)
    assert len(grads) >= 3 and len(held["per_pass"]) == len(grads)
    if arch != "vgg16":  # VGG's passes each hold whole conv stages: nothing kept for a lower pass
        assert held["boundary_bytes"] > 0 and held["deferred_bytes"] > 0
    # each pass: its per-sample gradients + the boundaries and kept activations held while it ran
    assert max(g + e for g, e in zip(grads, held["per_pass"])) <= budget * GB
    # counted per sample gradient only, the same budget plans fewer passes
    assert len(plan_passes(model, part.param_names, S, budget)) < len(grads)


def test_pass_plan_covers_each_owned_parameter_once_in_forward_order(setup):
    model, _, part = setup("switch")
    passes = plan_passes(model, part.param_names, S, _one_layer_budget(model, part))
    names = [n for p in passes for n in p.names]
    order = [n for n, _ in model.named_parameters() if n in set(part.param_names)]
    assert names == order
    assert plan_passes(model, part.param_names, S, None)[0].names == tuple(order)


def test_impossible_budget_names_the_layer_its_size_and_the_budget(setup):
    model, _, part = setup("bert")
    with pytest.raises(NtkBudgetError, match=r"layer '.*' alone needs .* GB .* owned parameters x S=6 .* budget of 1e-09 GB"):
        plan_passes(model, part.param_names, S, 1e-9)


def test_impossible_budget_is_a_config_error_before_training(run_config):
    from mat.train import load_run_config
    from mat.train.run_config import ConfigError

    with pytest.raises(ConfigError, match=r"ntk\.memory_gb: layer '.*' alone needs"):
        load_run_config(run_config("bert", ntk={"samples": 4, "top_k": 4, "memory_gb": 1.0e-9}))
    assert load_run_config(run_config("bert"))["ntk"]["memory_gb"] == 4


@pytest.mark.parametrize("arch", ["bert", "switch"])
def test_mat_run_with_a_forcing_budget_logs_the_same(run_config, tmp_path, arch, caplog):
    import re

    from mat.train import load_run_config, train

    cfg = run_config(arch)
    with torch.device("meta"):  # the run's model and input shape; S = 4 in the run
        model = build_model({**cfg["model"], "vocab_size": cfg["data"]["vocab_size"]})
    sample = torch.zeros((1, cfg["data"]["seq_len"]), dtype=torch.long, device="meta")
    budget = _tightest_budget(model, build_partition(model, cfg["partition"]), sample, 4)
    mat = {"name": "mat", "start_epoch": 0, "interval": 1, "alpha": 0.5}
    out = {}
    for label, gb in (("null", None), ("forced", budget)):
        cfg = load_run_config(run_config(arch, mat, ntk={"samples": 4, "top_k": 4, "memory_gb": gb}))
        with caplog.at_level("INFO", logger="mat.train"):
            caplog.clear()
            train(cfg, tmp_path / label)
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mNTK:")]
        assert len(lines) == 1  # at the first evaluation only
        passes = int(re.match(r"mNTK: (\d+) pass", lines[0]).group(1))
        assert (passes == 1) if gb is None else (passes > 1)
        out[label] = {f: pd.read_csv(tmp_path / label / f) for f in ("mntk.csv", "modules.csv", "metrics.csv")}
    for f in ("mntk.csv", "modules.csv"):
        pd.testing.assert_frame_equal(out["forced"][f], out["null"][f], rtol=1e-6)
    # every pass is the method's compute: more passes, more flops_mntk (one forward each)
    spent = {k: v["metrics.csv"].iloc[-1] for k, v in out.items()}
    assert spent["forced"].flops_mntk > spent["null"].flops_mntk > 0
    assert spent["forced"].flops_total - spent["forced"].flops_mntk == spent["null"].flops_total - spent["null"].flops_mntk
