"""Tables 1-3 from hand-made runs: budget picks, mean/std, test-at-best-valid, computation columns,
"not reached", bold best, errors for missing inputs, atomic output (see test_report_fakes for the data)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mat.__main__ import main
from mat.report import lm_measures as lm
from mat.report import vision_measures as vm
from mat.report.render import cell_text, to_markdown
from mat.report.runs import ReportInputError, RunMetrics
from mat.report.stats import Summary, fmt_pm, summarize
from mat.report.tables import build_table, write_table
from test_report_fakes import PF, lm_rows, write_all_runs, write_profile, write_run


@pytest.fixture()
def fake(tmp_path):
    profile = write_profile(tmp_path / "profiles")
    write_all_runs(tmp_path, profile)
    return tmp_path, profile


def _run(rows) -> RunMetrics:
    return RunMetrics("m", 0, None, pd.DataFrame(rows))


def _sd(*xs):
    return float(np.std(xs, ddof=1))


# ------------------------------------------------------------------------------ one run
def test_valid_loss_at_budget_is_last_evaluation_within_the_budget():
    run = _run(lm_rows([10, 20, 30, 40], [5.0, 4.0, 3.0, 3.5], [0, 0, 0, 0]))
    assert lm.valid_loss_at_budget(run, 25 * PF).loss == 4.0
    at = lm.valid_loss_at_budget(run, 30 * PF)  # a budget met exactly counts as within
    assert (at.loss, at.step, at.ended_early) == (3.0, 30, False)
    late = lm.valid_loss_at_budget(run, 100 * PF)  # the run stopped before the budget
    assert (late.loss, late.ended_early) == (3.5, True)
    assert math.isnan(lm.valid_loss_at_budget(run, 5 * PF).loss)  # nothing evaluated yet


def test_convergence_takes_test_loss_at_best_validation_not_best_test():
    run = _run(lm_rows([10, 20, 30, 40], [5.0, 4.0, 3.0, 3.5], [5.1, 4.1, 3.2, 3.1]))
    c = lm.convergence(run)
    assert (c.step, c.valid_loss, c.test_loss) == (30, 3.0, 3.2)
    assert c.flops == 30 * PF and c.flops_paper == pytest.approx(0.9 * 30 * PF)


def test_vision_measures_first_train_row_reaching_target_and_best_test():
    from test_report_fakes import vision_rows

    run = _run(vision_rows([5, 10, 15, 20], [0.5, 0.85, 0.92, 0.95], [10, 20], [0.80, 0.88]))
    assert vm.flops_to_train_accuracy(run, 0.9) == 15 * PF
    assert vm.flops_to_train_accuracy(run, 0.95) == 20 * PF  # >= target
    assert vm.flops_to_train_accuracy(run, 0.99) is None
    b = vm.best_test(run)
    assert (b.step, b.accuracy, b.flops) == (20, 0.88, 20 * PF)


# ------------------------------------------------------------------------------ Table 1 / 2
def test_table1_cells_budgets_and_bold(fake):
    root, profile = fake
    t = build_table("table1", profile, root)
    # budgets: fractions x mean vanilla computation (30 and 48 PF at their best validation loss)
    assert [t.shared[f"budget_b{i}_pflops"] for i in (1, 2, 3)] == pytest.approx([0.5 * 0.039, 0.7 * 0.039, 0.9 * 0.039])
    assert t.shared["budget_b1_fraction"] == 0.5
    cell = lambda m, k: t.row(m).cells[k].summary  # noqa: E731
    # vanilla: b1 = 19.5 PF -> evals at 10 and 12 PF; b3 = 35.1 PF -> 30 and 24 PF
    assert cell("vanilla", "val_loss_at_b1").mean == pytest.approx(5.1)
    assert cell("vanilla", "val_loss_at_b1").std == pytest.approx(_sd(5.0, 5.2))
    assert cell("vanilla", "val_loss_at_b3").mean == pytest.approx(3.6)
    assert cell("vanilla", "val_loss_at_b3").std == pytest.approx(_sd(3.0, 4.2))
    assert cell("vanilla", "test_loss").mean == pytest.approx(3.1)  # 3.2 and 3.0, not the best test 3.1/3.0
    assert cell("vanilla", "computation_pflops").mean == pytest.approx(0.039)
    assert cell("vanilla", "computation_pflops").std == pytest.approx(_sd(0.030, 0.048))
    assert cell("vanilla", "computation_paper_estimate_pflops").mean == pytest.approx(0.9 * 0.039)
    assert cell("rand", "computation_pflops").std == 0.0
    assert cell("mat", "val_loss_at_b3").mean == pytest.approx((2.9 + 2.95) / 2)
    assert cell("mat", "test_loss").mean == pytest.approx(2.85)
    assert t.row("mat").n_seeds == 2
    # MAT seed 0 spent 24 PF in total: budgets 2 (27.3) and 3 (35.1) are flagged, budget 1 is not
    assert [t.row("mat").extra[f"val_loss_at_b{i}_ended_early"] for i in (1, 2, 3)] == [0, 1, 1]
    assert t.row("mat").cells["val_loss_at_b3"].mark == "†"
    assert t.row("vanilla").cells["val_loss_at_b3"].mark == ""
    for key in ("val_loss_at_b1", "val_loss_at_b2", "val_loss_at_b3", "test_loss", "computation_pflops"):
        assert t.best(key) == {"mat"}, key
    md = to_markdown(t)
    assert "| MAT | 2 | **3.100 ± 0.141** |" in md
    assert "| BERT | 2 | 5.100 ± 0.141 |" in md and "BERT-Rand" in md
    assert "@ 0.5 × vanilla (0.0195 PFLOPs)" in md
    assert "† Some runs spent less than this budget" in md and "seeds [0]" in md


def test_table2_uses_absolute_pflops_budgets(fake):
    root, profile = fake
    t = build_table("table2", profile, root)
    assert t.shared["budget_b1_pflops"] == 0.015 and math.isnan(t.shared["budget_b1_fraction"])
    assert t.row("vanilla").label == "Switch" and t.row("rand").label == "Switch-Rand"
    # 15 PF: evals at 10 and 12 PF; 35 PF: evals at 30 and 24 PF
    assert t.row("vanilla").cells["val_loss_at_b1"].summary.mean == pytest.approx(5.1)
    assert t.row("vanilla").cells["val_loss_at_b3"].summary.mean == pytest.approx(3.6)
    assert "Validation loss @ 0.015 PFLOPs" in to_markdown(t)


def test_no_evaluation_within_budget_is_left_out_and_marked(tmp_path):
    profile = write_profile(tmp_path / "profiles", experiments=("table2",))
    write_all_runs(tmp_path, profile)
    write_run(tmp_path, profile, "table2", "rand", 1, lm_rows([16, 20, 30, 40], [5.7, 4.7, 3.9, 3.7], [5, 5, 4, 3.8]))
    t = build_table("table2", profile, tmp_path)
    c = t.row("rand").cells["val_loss_at_b1"]  # budget 15 PF: seed 1's first evaluation is at 16 PF
    assert (c.summary.n, c.summary.mean, c.mark, c.suffix) == (1, 5.5, "‡", " (1/2 seeds)")
    assert not t.row("rand").complete("val_loss_at_b1")


# ------------------------------------------------------------------------------ Table 3
def test_table3_reached_not_reached_and_best(fake):
    root, profile = fake
    t = build_table("table3", profile, root)
    s = lambda m, k: t.row(m).cells[k].summary  # noqa: E731
    assert s("vanilla", "pflops_to_train_acc_90").mean == pytest.approx(0.0125)
    assert s("vanilla", "pflops_to_train_acc_90").std == pytest.approx(_sd(0.015, 0.010))
    assert s("rand", "pflops_to_train_acc_90").mean == pytest.approx(0.0175)
    assert s("mat", "pflops_to_train_acc_90").mean == pytest.approx(0.008)
    assert s("vanilla", "pflops_to_train_acc_99").n == 0
    assert s("mat", "pflops_to_train_acc_99").n == 1 and s("mat", "pflops_to_train_acc_99").mean == pytest.approx(0.012)
    assert s("mat", "test_acc_pct").mean == pytest.approx(90.5)
    assert s("mat", "test_acc_pct").std == pytest.approx(_sd(90.0, 91.0))
    assert s("vanilla", "test_acc_pct").mean == pytest.approx(87.0)
    assert s("mat", "computation_pflops").mean == pytest.approx(0.010)  # best test at 8 and 12 PF
    assert t.best("pflops_to_train_acc_90") == {"mat"}
    assert t.best("test_acc_pct") == {"mat"}
    assert t.best("pflops_to_train_acc_99") == set()  # no method reached 99% in every seed
    assert cell_text(t, "vanilla", "pflops_to_train_acc_99") == "not reached"
    assert cell_text(t, "mat", "pflops_to_train_acc_99") == "0.01200 (1/2 seeds reached)"
    assert cell_text(t, "mat", "test_acc_pct") == "**90.50 ± 0.71**"
    md = to_markdown(t)
    assert "| VGG16 | 2 |" in md and "no validation split" in md


# ------------------------------------------------------------------------------ files and errors
def test_write_table_writes_csv_and_markdown(fake):
    root, profile = fake
    csv_path, md_path = write_table("table1", profile, root)
    assert csv_path == root / "results/fake/table1.csv" and md_path.read_text().startswith("### Table 1")
    df = pd.read_csv(csv_path).set_index("method")
    assert list(df.index) == ["vanilla", "rand", "multirate", "mat"]
    assert df.loc["mat", "val_loss_at_b1_mean"] == pytest.approx(3.1)
    assert df.loc["mat", "val_loss_at_b1_std"] == pytest.approx(_sd(3.0, 3.2))
    assert df.loc["mat", "n_seeds"] == 2 and df.loc["mat", "val_loss_at_b1_n"] == 2
    assert df.loc["vanilla", "computation_pflops_mean"] == pytest.approx(0.039)
    assert df.loc["vanilla", "computation_paper_estimate_pflops_mean"] == pytest.approx(0.0351)
    assert not list((root / "results/fake").glob(".*"))  # no temporary files left behind


def test_missing_run_names_the_folder_and_writes_nothing(fake, capsys):
    root, profile = fake
    (root / "results/fake/runs/table1/mat/seed1/metrics.csv").unlink()
    with pytest.raises(ReportInputError, match=r"runs/table1/mat/seed1: missing metrics.csv"):
        write_table("table1", profile, root)
    assert not (root / "results/fake/table1.csv").exists() and not (root / "results/fake/table1.md").exists()
    rc = main(["table", "table1", "--profile", "fake", "--root", str(root), "--profile-dir", str(root / "profiles")])
    assert rc == 1 and "mat/seed1: missing metrics.csv" in capsys.readouterr().err
    assert not (root / "results/fake/table1.csv").exists()


def test_missing_column_and_split_are_named(fake):
    root, profile = fake
    path = root / "results/fake/runs/table1/rand/seed0/metrics.csv"
    df = pd.read_csv(path)
    df.drop(columns=["flops_total_noemb"]).to_csv(path, index=False)
    with pytest.raises(ReportInputError, match=r"rand/seed0/metrics.csv: missing columns \['flops_total_noemb'\]"):
        build_table("table1", profile, root)
    df[df.split != "valid"].to_csv(path, index=False)
    with pytest.raises(ReportInputError, match=r"no rows with split='valid'"):
        build_table("table1", profile, root)


def test_unknown_table_and_absent_experiment(tmp_path):
    profile = write_profile(tmp_path / "profiles", experiments=("table1",))
    with pytest.raises(ReportInputError, match="unknown table 'table9'"):
        build_table("table9", profile, tmp_path)
    with pytest.raises(ReportInputError, match=r"needs experiments \['table3'\]"):
        build_table("table3", profile, tmp_path)


def test_cli_writes_the_table(fake, capsys):
    root, _ = fake
    rc = main(["table", "table3", "--profile", "fake", "--root", str(root), "--profile-dir", str(root / "profiles")])
    assert rc == 0 and (root / "results/fake/table3.csv").is_file()
    assert "not reached" in (root / "results/fake/table3.md").read_text()


# ------------------------------------------------------------------------------ formatting
def test_summary_and_formatting():
    s = summarize([1.0, None, 3.0, math.nan])
    assert (s.mean, s.std, s.n) == (2.0, pytest.approx(math.sqrt(2)), 2)
    assert math.isnan(summarize([4.0]).std) and summarize([]).n == 0
    assert fmt_pm(Summary(4.4612, 0.0412, 2), 2) == "4.46 ± 0.04"
    assert fmt_pm(Summary(16.5, 0.123, 2), 4, "g") == "16.50 ± 0.12"
    assert fmt_pm(Summary(9.084e-4, 7.3e-5, 2), 4, "g") == "(9.084 ± 0.730)e-04"
    assert fmt_pm(Summary(3.0, math.nan, 1), 2) == "3.00"
