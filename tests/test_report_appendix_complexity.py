"""Table 6: exponent fits on synthetic power laws, exact tensor-memory counts, Eq. 1 between the full
and the modular Grams, the sweep's m and L, config errors, the mNTK's memory budget, the
measurement's files (mat.complexity) and Table 6 as a view of them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from mat.models import build_model, build_partition
from mat.ntk import full_ntk, per_sample_grads_hooks
from mat.complexity import measure as cx
from mat.complexity.sweep import DEFAULTS, SweepError, sweep_config
from mat.complexity.tensor_memory import TensorMemory
from mat.report import complexity_table as ct
from mat.report.runs import ReportInputError
from mat.report.targets import write as write_table
from test_report_appendix_fakes import write_profile

MICRO = {"samples": [2, 4], "hidden": [8, 16], "heads": [1, 2], "base": {"samples": 4, "hidden": 8, "heads": 2},
         "layers": 1, "seq_len": 4, "vocab_size": 16, "repeats": 1, "chunk_size": 2}


def test_fit_recovers_synthetic_power_laws():
    x = np.array([2.0, 4, 8, 16, 32])
    f = ct.fit_exponent(x, 3.0 * x**2.5)
    assert f.exponent == pytest.approx(2.5) and math.exp(f.intercept) == pytest.approx(3.0)
    assert f.r2 == pytest.approx(1.0) and f.stderr == pytest.approx(0.0, abs=1e-12) and f.n == 5
    noisy = ct.fit_exponent(x, x**-1 * np.array([1.1, 0.9, 1.05, 0.95, 1.0]))
    assert noisy.exponent == pytest.approx(-1, abs=0.1) and 0 < noisy.r2 < 1 and noisy.stderr > 0
    flat = ct.fit_exponent(x, np.full(5, 7.0))
    assert flat.exponent == pytest.approx(0, abs=1e-12) and math.isnan(flat.r2)
    two = ct.fit_exponent([1, 10], [1, 1000])
    assert two.exponent == pytest.approx(3) and math.isnan(two.stderr)
    for bad in (([1], [1]), ([1, 2], [0, 1]), ([3, 3], [1, 2])):
        with pytest.raises(ValueError):
            ct.fit_exponent(*bad)


def test_fits_read_each_sweep_against_its_variable():
    rows = []
    for var, values in (("S", [8, 16, 32]), ("m", [100, 400, 1600]), ("L", [2, 4, 8])):
        for v in values:
            point = {"S": 16, "m": 400, "L": 4, var: v}
            for stage, (a, b, c) in {"full_gram": (2, 1, 0), "modular_eig": (3, 0, 1)}.items():
                secs = 1e-6 * point["S"] ** a * point["m"] ** b * point["L"] ** c
                rows.append({"sweep": var, **point, "stage": stage, "seconds": secs, "peak_bytes": 8.0 * point["S"] ** 2})
    fits = ct.fits(pd.DataFrame(rows)).set_index(["stage", "variable"])["exponent"]
    assert fits[("full_gram", "S")] == pytest.approx(2) and fits[("full_gram", "m")] == pytest.approx(1)
    assert fits[("full_gram", "L")] == pytest.approx(0, abs=1e-9) and fits[("modular_eig", "L")] == pytest.approx(1)
    mem = ct.fits(pd.DataFrame(rows), "peak_bytes").set_index(["stage", "variable"])["exponent"]
    assert mem[("full_gram", "S")] == pytest.approx(2) and mem[("modular_eig", "m")] == pytest.approx(0, abs=1e-9)


def test_tensor_memory_counts_allocations_views_and_frees():
    x = torch.randn(10, 100)  # from before the mode: not counted
    with TensorMemory() as mem:
        a = torch.cat([x, x], 1)  # 10 * 200 * 4 = 8000
        g = a @ a.T  # 400
        d = g.double()  # 800
        v = a[:, :5].T  # a view: nothing new, keeps a's storage alive
        del a
        s = v.reshape(-1)  # a copy (v is not contiguous): 200
        x.mul_(1.0)  # in place on old memory: nothing
        y = x.view(-1)  # a view of old memory: nothing
    assert mem.peak == 8000 + 400 + 800 + 200 and mem.current == 9400
    del v, s, y
    assert mem.current == 1200  # g and d remain
    del g, d
    assert mem.current == 0


def _micro_bert(hidden=8, heads=2, layers=1):
    torch.manual_seed(0)
    model = build_model({"arch": "bert", "layers": layers, "hidden": hidden, "heads": heads, "intermediate": 16,
                         "max_len": 4, "vocab_size": 16})
    return model, build_partition(model, ["head"])


def test_modular_grams_sum_to_the_full_gram_eq1():
    model, part = _micro_bert()
    inputs = torch.randint(0, 16, (5, 4), generator=torch.Generator().manual_seed(1))
    grads = per_sample_grads_hooks(model, inputs, part.param_names, 2)
    full = cx.full_gram(grads)
    mod = cx.modular_grams(grads, part)
    assert mod.shape == (len(part), 5, 5) and mod.dtype == torch.float64
    torch.testing.assert_close(mod.sum(0), full, rtol=1e-5, atol=1e-6)  # Eq. 1
    # and the full Gram agrees with mat.ntk's independent vmap reference over the same parameters
    torch.testing.assert_close(full, full_ntk(model, inputs, part.param_names), rtol=1e-4, atol=1e-5)


def test_micro_sweep_m_l_and_exact_gram_memory():
    sweep = sweep_config({"profile": "x", "complexity": MICRO})
    raw = cx.run_sweep(sweep)
    # points: S in {2, 4} (hidden 8, 2 heads), hidden in {8, 16}, heads in {1, 2}; every stage at each
    assert sorted(raw["sweep"].value_counts().items()) == [("L", 12), ("S", 12), ("m", 12)]
    assert set(raw["stage"]) == set(cx.STAGES)
    for _, r in raw.iterrows():
        h = r["hidden"]
        assert r["m"] == 4 * h * h + 3 * h  # per layer: q, k, v weights + biases, output weight (not its bias)
        assert r["L"] == r["heads"]
    g = raw[raw.stage == "full_gram"]
    # cat -> J [S, m] float32, J J^T float32 [S, S], then float64 [S, S]
    np.testing.assert_array_equal(g["peak_bytes"], 4 * g["S"] * g["m"] + 4 * g["S"] ** 2 + 8 * g["S"] ** 2)
    e = raw[raw.stage == "modular_eig"]
    assert (e["peak_bytes"] >= 8 * e["L"] * e["S"]).all()
    assert raw.loc[raw.stage.isin(["jacobian", "trainer_mntk"]), "peak_bytes"].isna().all() and (raw["seconds"] > 0).all()


def test_sweep_config_defaults_and_errors():
    s = sweep_config({"profile": "x"})
    assert s.samples == tuple(DEFAULTS["samples"]) and s.base_heads == DEFAULTS["base"]["heads"]
    assert sweep_config({"profile": "x", "complexity": {"base": {"samples": 16}}}).base_hidden == DEFAULTS["base"]["hidden"]
    bad = [
        ({"sample": [1, 2]}, r"unknown keys \['sample'\]"),
        ({"hidden": [30]}, "hidden 30 is not divisible by heads 8"),
        ({"heads": [4]}, r"complexity.heads: expected at least 2 distinct values"),
        ({"repeats": 0}, r"complexity.repeats: expected an integer >= 1, got 0"),
        ({"base": {"size": 1}}, r"complexity.base: unknown keys \['size'\]"),
        ({"device": "tpu"}, r"complexity.device: expected one of cpu, cuda, auto, got .tpu."),
    ]
    for given, match in bad:
        with pytest.raises(SweepError, match=match):
            sweep_config({"profile": "x", "complexity": given})


def test_sweep_takes_the_runs_mntk_memory_budget_and_passes_it_to_the_mntk(monkeypatch):
    assert sweep_config({"profile": "x"}).memory_gb == 4.0  # the run schema's default ntk.memory_gb
    assert sweep_config({"profile": "x", "defaults": {"ntk": {"memory_gb": 0.5}}}).memory_gb == 0.5
    assert sweep_config({"profile": "x", "defaults": {"ntk": {"memory_gb": None}}}).memory_gb is None
    assert sweep_config({"profile": "x", "complexity": {"memory_gb": 2}, "defaults": {"ntk": {"memory_gb": 0.5}}}).memory_gb == 2.0
    with pytest.raises(SweepError, match=r"complexity.memory_gb: expected a number > 0 or null, got -1"):
        sweep_config({"profile": "x", "complexity": {"memory_gb": -1}})
    import mat.ntk

    seen, real = [], mat.ntk.module_ntk

    def recording(*args, **kwargs):
        seen.append(kwargs.get("memory_gb"))
        return real(*args, **kwargs)

    monkeypatch.setattr(mat.ntk, "module_ntk", recording)
    sweep = sweep_config({"profile": "x", "complexity": {**MICRO, "memory_gb": 0.25}})
    cx.measure_point(sweep, "cpu", 2, 8, 2)
    assert seen and set(seen) == {0.25}


def test_table6_files_name_the_hardware_and_the_paper(tmp_path):
    profile = write_profile(tmp_path / "profiles", table7=False)
    profile = {**profile, "complexity": MICRO}  # what a profile's `complexity` block gives
    with pytest.raises(ReportInputError, match="missing; measure first: python -m mat complexity --profile fake"):
        write_table("table6", profile, tmp_path)
    measured = cx.write(profile, tmp_path)
    assert measured == {"csv": tmp_path / "results/fake/complexity/measurements.csv",
                        "sweep": tmp_path / "results/fake/complexity/sweep.json"}
    csv_path, md_path = write_table("table6", profile, tmp_path).values()
    table = pd.read_csv(csv_path)
    assert table["stage"].tolist() == list(cx.STAGES) == list(ct.STAGES)
    paper = table.set_index("stage")
    assert (paper.loc["modular_grams", ["paper_exp_S", "paper_exp_m", "paper_exp_L"]] == [1, 2, -1]).all()
    assert (paper.loc["modular_eig", ["paper_exp_S", "paper_exp_m", "paper_exp_L"]] == [3, 0, 1]).all()
    m = np.array([4 * 8 * 8 + 3 * 8, 4 * 16 * 16 + 3 * 16])  # the m sweep: hidden 8 and 16, S = 4
    peak = 4 * 4 * m + 12 * 4 * 4  # full Gram: J (float32) + J J^T (float32 and float64)
    assert paper["time_exp_S"].notna().all()
    assert paper.loc["full_gram", "memory_exp_m"] == pytest.approx(np.log(peak[1] / peak[0]) / np.log(m[1] / m[0]))
    raw = pd.read_csv(measured["csv"])
    assert len(raw) == 36 and raw["hardware"].nunique() == 1
    md = md_path.read_text()
    assert md.startswith("### Table 6:") and "Measured on " in md and "torch thread(s)" in md
    assert "| NTK Grams, modular: L × J_l J_lᵀ | O(S m² / L) | 1 / " in md
    assert "| Jacobian J (S per-sample gradients; shared) | S extra gradient propagations | — / " in md
    # Table 6 is a view: rebuilt from the files alone, it is the same, byte for byte
    before = csv_path.read_bytes(), md_path.read_bytes()
    write_table("table6", {**profile, "complexity": {"repeats": 3}}, tmp_path)  # the block is not read
    assert (csv_path.read_bytes(), md_path.read_bytes()) == before
    # a bad config measures and writes nothing
    for p in measured.values():
        p.unlink()
    with pytest.raises(SweepError, match="unknown keys"):
        cx.write({**profile, "complexity": {"bogus": 1}}, tmp_path)
    assert not any(p.exists() for p in measured.values())
