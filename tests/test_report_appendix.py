"""Tables 5 and 7 from hand-made runs: measured forward/backward sparsity, convergence point, mNTK
overhead and saving; files written together or not at all; clear errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mat.__main__ import main
from mat.report import pruning_table as pt
from mat.report import scaling_table as st
from mat.report.render import to_markdown
from mat.report.run_logs import read_modules
from mat.report.runs import ReportInputError
from mat.report.targets import build as build_table, write as write_table
from test_report_appendix_fakes import PF, SIZES, evaluations, module_rows, write_profile, write_run


def _sd(*xs):
    return float(np.std(xs, ddof=1))


# ------------------------------------------------------------------------------ sparsity measures
# 4 heads, 2 epochs of 10 steps. h2 is pruned from the start, h3 from epoch 1, h1 frozen in epoch 1.
MAT_SEED0 = {"h0": [(10, 10, False), (10, 10, False)], "h1": [(5, 10, False), (0, 10, False)],
             "h2": [(0, 10, True), (0, 10, True)], "h3": [(10, 10, False), (0, 10, True)]}
MAT_SEED1 = {"h0": [(10, 10, False), (10, 10, False)], "h1": [(0, 10, False), (0, 10, False)],
             "h2": [(10, 10, False), (0, 10, True)], "h3": [(0, 10, True), (0, 10, True)]}
ALL_ACTIVE = {f"h{i}": [(10, 10, False)] * 2 for i in range(4)}
SNIP50 = {**{f"h{i}": [(10, 10, False)] * 2 for i in (0, 1)}, **{f"h{i}": [(0, 10, True)] * 2 for i in (2, 3)}}
SNIP75 = {"h0": [(10, 10, False)] * 2, **{f"h{i}": [(0, 10, True)] * 2 for i in (1, 2, 3)}}


def _modules(spec) -> pd.DataFrame:
    df = pd.DataFrame(module_rows(spec))
    df["pruned"] = df["pruned"] == "true"
    return df


def test_sparsities_by_hand():
    m = _modules(MAT_SEED0)
    assert pt.forward_sparsity(m) == 0.5  # h2, h3 pruned in the last epoch
    assert pt.forward_sparsity_over_steps(m) == pytest.approx((1 / 4 * 10 + 2 / 4 * 10) / 20)
    assert pt.backward_sparsity(m) == pytest.approx(1 - (10 + 10 + 5 + 0 + 0 + 0 + 10 + 0) / 80)
    sizes = {"h0": 1, "h1": 3, "h2": 1, "h3": 1}  # parameter counts weight the shares
    assert pt.forward_sparsity(m, sizes) == pytest.approx(2 / 6)
    assert pt.backward_sparsity(m, sizes) == pytest.approx(1 - (20 * 1 + 5 * 3 + 10 * 1) / (20 * 6))
    assert pt.backward_sparsity(_modules(ALL_ACTIVE)) == 0.0 and pt.forward_sparsity(_modules(ALL_ACTIVE)) == 0.0
    with pytest.raises(ReportInputError, match="parameter counts missing"):
        pt.backward_sparsity(m, {"h0": 1})


# ------------------------------------------------------------------------------ Table 5
# (flops PF, valid, test) per evaluation; best validation: vanilla s0 step 20, s1 step 30, ...
T5_RUNS = {
    ("vanilla", 0): ([10, 20, 30], [5.0, 4.0, 4.5], [5.1, 4.1, 4.2], ALL_ACTIVE),
    ("vanilla", 1): ([10, 20, 30], [5.0, 4.2, 4.0], [5.1, 4.3, 3.9], ALL_ACTIVE),
    ("snip50", 0): ([6, 12, 18], [5.0, 4.5, 4.4], [5.0, 4.6, 4.3], SNIP50),
    ("snip50", 1): ([6, 12, 18], [5.0, 4.5, 4.6], [5.0, 4.5, 4.7], SNIP50),
    ("snip75", 0): ([4, 8, 12], [5.5, 5.0, 4.9], [5.6, 5.1, 5.0], SNIP75),
    ("snip75", 1): ([4, 8, 12], [5.5, 5.0, 4.9], [5.6, 5.1, 5.2], SNIP75),
    ("mat_prune", 0): ([5, 9, 13], [4.8, 3.9, 4.0], [4.9, 3.8, 4.1], MAT_SEED0),
    ("mat_prune", 1): ([5, 9, 13], [4.8, 3.9, 3.95], [4.9, 4.0, 4.1], MAT_SEED1),
}


def _t7_runs(root, sizes=SIZES):
    for k, size in enumerate(sizes):
        f = 2**k  # each size doubles the compute
        write_run(root, f"table7_{size}", "vanilla", 0, evaluations([10 * f, 20 * f, 30 * f], [5, 4, 3], [5, 4, 3]),
                  module_rows(ALL_ACTIVE))
        write_run(root, f"table7_{size}", "mat", 0,
                  evaluations([8 * f, 16 * f, 24 * f], [5, 3, 3.5], [5, 3.1, 3.0], mntk=[1 * f, 2 * f, 3 * f]),
                  module_rows(MAT_SEED0))


@pytest.fixture()
def fake(tmp_path):
    profile = write_profile(tmp_path / "profiles")
    for (method, seed), (flops, valid, test, mods) in T5_RUNS.items():
        write_run(tmp_path, "table5", method, seed, evaluations(flops, valid, test), module_rows(mods))
    _t7_runs(tmp_path)
    return tmp_path, profile


def test_table5_cells_labels_and_bold(fake):
    root, profile = fake
    t = build_table("table5", profile, root)
    assert [r.label for r in t.rows] == ["Vanilla", "SNIP (50%)", "SNIP (75%)", "MAT"]
    s = lambda m, k: t.row(m).cells[k].summary  # noqa: E731
    assert (s("vanilla", "forward_sparsity_pct").mean, s("vanilla", "backward_sparsity_pct").mean) == (0.0, 0.0)
    assert (s("snip50", "forward_sparsity_pct").mean, s("snip50", "backward_sparsity_pct").mean) == (50.0, 50.0)
    assert (s("snip75", "forward_sparsity_pct").mean, s("snip75", "backward_sparsity_pct").mean) == (75.0, 75.0)
    assert s("mat_prune", "forward_sparsity_pct").mean == 50.0
    assert s("mat_prune", "backward_sparsity_pct").mean == pytest.approx(100 * (0.5625 + 0.625) / 2)
    assert s("mat_prune", "backward_sparsity_pct").std == pytest.approx(100 * _sd(0.5625, 0.625))
    # the paper's convergence: the best test loss, compute until then; ours: at the best validation loss
    assert s("snip75", "test_loss").mean == pytest.approx((5.0 + 5.1) / 2)  # seed 1: best test 5.1 at 8 PF
    assert s("snip75", "computation_pflops").mean == pytest.approx(0.010)
    assert s("snip75", "computation_paper_estimate_pflops").mean == pytest.approx(0.9 * 0.010)  # the paper's accounting
    assert s("snip75", "test_loss_at_best_valid").mean == pytest.approx((5.0 + 5.2) / 2)  # best valid at 12 PF
    assert s("snip75", "computation_at_best_valid_pflops").mean == pytest.approx(0.012)
    assert s("vanilla", "test_loss").mean == pytest.approx((4.1 + 3.9) / 2)
    assert s("vanilla", "computation_pflops").mean == pytest.approx(0.025)
    assert s("snip50", "test_loss").mean == pytest.approx((4.3 + 4.5) / 2)  # seed 1 best at step 20
    assert s("mat_prune", "test_loss").mean == pytest.approx((3.8 + 4.0) / 2)
    assert s("mat_prune", "computation_pflops").mean == pytest.approx(0.009)
    assert t.best("computation_pflops") == {"mat_prune"} and t.best("forward_sparsity_pct") == set()
    assert t.row("snip75").extra["prune_ratio"] == 0.75 and t.row("vanilla").extra["prune_ratio"] == 0.0
    assert t.row("mat_prune").extra["forward_sparsity_over_steps_pct_mean"] == pytest.approx(100 * (0.375 + 0.375) / 2)
    md = to_markdown(t)
    assert "| SNIP (75%) | 2 | 75.0 ± 0.0 | 75.0 ± 0.0 |" in md
    assert "**(9.000 ± 0.000)e-03**" in md and "fake" in t.title and "not paper numbers" in t.title


def test_table5_write_and_missing_modules_csv(fake, capsys):
    root, profile = fake
    csv_path, md_path = write_table("table5", profile, root).values()
    df = pd.read_csv(csv_path)
    assert df["label"].tolist() == ["Vanilla", "SNIP (50%)", "SNIP (75%)", "MAT"]
    assert df.loc[df.method == "mat_prune", "backward_sparsity_pct_mean"].item() == pytest.approx(59.375)
    assert md_path.read_text().startswith("### Table 5:")
    csv_path.unlink(), md_path.unlink()
    (root / "results/fake/runs/table5/snip50/seed1/modules.csv").unlink()
    code = main(["table", "table5", "--profile", "fake", "--root", str(root), "--profile-dir", str(root / "profiles")])
    err = capsys.readouterr().err
    assert code == 1 and "snip50/seed1/modules.csv: missing" in err
    assert not csv_path.exists() and not md_path.exists()


def test_modules_csv_errors_name_the_problem(tmp_path):
    d = write_run(tmp_path, "table5", "vanilla", 0, [], module_rows({"h0": [(11, 10, False)]}))
    with pytest.raises(ReportInputError, match=r"steps_active 11 outside \[0, steps = 10\]"):
        read_modules(d)
    (d / "modules.csv").write_text("epoch,module,kind,layer,index,steps_active,steps,pruned\n0,h0,head,0,0,5,10,maybe\n")
    with pytest.raises(ReportInputError, match=r"column 'pruned' has \['maybe'\]"):
        read_modules(d)
    (d / "modules.csv").write_text("epoch,module,steps\n0,h0,10\n")
    with pytest.raises(ReportInputError, match=r"missing columns \['kind', 'layer', 'index', 'steps_active', 'pruned'\]"):
        read_modules(d)


# ------------------------------------------------------------------------------ Table 7
def test_table7_per_size_computation_overhead_and_saving(fake):
    root, profile = fake
    t = build_table("table7", profile, root)
    assert [r.label for r in t.rows] == ["BERT-Mini", "BERT-Small", "BERT-Medium", "BERT-Base", "BERT-Large"]
    for k, r in enumerate(t.rows):
        f = 2**k
        assert r.cells["vanilla_pflops"].summary.mean == pytest.approx(30 * f * PF / 1e15)  # best test: last
        assert r.cells["mat_pflops"].summary.mean == pytest.approx(24 * f * PF / 1e15)  # best test: last
        assert r.cells["mat_overhead_pflops"].summary.mean == pytest.approx(3 * f * PF / 1e15)  # flops_mntk there
        assert r.cells["saving_pct"].summary.mean == pytest.approx(100 * (1 - 24 / 30))
        assert r.extra["overhead_pct_of_mat"] == pytest.approx(100 * 3 / 24)
        # ours beside: until the best validation loss (MAT: the 2nd evaluation)
        assert r.cells["mat_paper_pflops"].summary.mean == pytest.approx(0.9 * 24 * f * PF / 1e15)
        assert r.cells["saving_paper_pct"].summary.mean == pytest.approx(100 * (1 - 24 / 30))
        assert r.cells["mat_at_best_valid_pflops"].summary.mean == pytest.approx(16 * f * PF / 1e15)
        assert r.cells["saving_at_best_valid_pct"].summary.mean == pytest.approx(100 * (1 - 16 / 30))
        assert math.isnan(r.cells["vanilla_pflops"].summary.std)  # one seed: no spread
    md = st.to_markdown(t)
    lines = md.splitlines()
    assert lines[2] == "|  | BERT-Mini | BERT-Small | BERT-Medium | BERT-Base | BERT-Large |"
    assert "| Saving (%) | 20.0 | 20.0 | 20.0 | 20.0 | 20.0 |" in md
    assert "| Saving until best validation (ours, %) | 46.7 | 46.7 | 46.7 | 46.7 | 46.7 |" in md
    assert "| Vanilla computation (PFLOPs) | 0.03000 | 0.06000 | 0.1200 | 0.2400 | 0.4800 |" in md
    csv_path, md_path = write_table("table7", profile, root).values()
    assert md_path.read_text() == md and pd.read_csv(csv_path)["experiment"].tolist() == [f"table7_{s}" for s in SIZES]


def test_table7_needs_every_size_and_the_overhead_column(fake, tmp_path):
    root, profile = fake
    run = root / "results/fake/runs/table7_base/mat/seed0/metrics.csv"
    run.write_text(pd.read_csv(run).drop(columns=["flops_mntk"]).to_csv(index=False))
    with pytest.raises(ReportInputError, match="missing column 'flops_mntk'"):
        build_table("table7", profile, root)
    small = write_profile(tmp_path / "p2", table7=False)
    with pytest.raises(ReportInputError, match=r"table 'table7' needs experiments \['table7_mini'"):
        build_table("table7", small, root)
