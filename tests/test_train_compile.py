"""`train.compile`: the compiled training step computes what the eager one computes, frozen modules
stay frozen under it (the partial backward inside the compiled graph), and MAT's decisions match."""

from __future__ import annotations

import pandas as pd
import pytest
import torch._dynamo

from mat.train import load_run_config, train

pytestmark = pytest.mark.usefixtures("one_thread")

MAT = {"name": "mat", "start_epoch": 0, "interval": 1, "alpha": 0.5}


def _run(run_config, tmp_path, arch, method, name, **train_opts):
    cfg = load_run_config(run_config(arch, method, train={"max_steps": 8, **train_opts}))
    out = tmp_path / name
    train(cfg, out)
    return pd.read_csv(out / "metrics.csv"), pd.read_csv(out / "modules.csv")


@pytest.mark.parametrize("arch", ["bert", "switch", "vgg16"])
def test_compiled_steps_match_eager_steps(run_config, tmp_path, arch):
    m_eager, mod_eager = _run(run_config, tmp_path, arch, MAT, "eager")
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    m_comp, mod_comp = _run(run_config, tmp_path, arch, MAT, "compiled", compile=True, compile_backend="aot_eager")
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it really ran compiled
    # Same decisions (which modules moved, each step), same measured compute, same losses.
    pd.testing.assert_frame_equal(mod_eager, mod_comp, check_exact=True)
    assert (mod_eager.steps_active < mod_eager.steps).any()  # some module really was frozen
    flops = [c for c in m_eager.columns if c.startswith("flops_")]
    pd.testing.assert_frame_equal(m_eager[flops], m_comp[flops], check_exact=True)
    pd.testing.assert_series_equal(m_eager.loss, m_comp.loss, rtol=1e-4, atol=1e-6)


def test_compile_backend_is_validated(run_config):
    with pytest.raises(Exception, match="compile_backend"):
        load_run_config(run_config("bert", train={"compile": True, "compile_backend": "tensorrt"}))
