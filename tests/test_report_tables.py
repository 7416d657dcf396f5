"""Tables 1-3 from hand-made runs: budget readouts, mean/std, convergence (best test, ours: best valid), computation columns,
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
from mat.report.targets import build as build_table, write as write_table
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
def test_valid_loss_at_budget_is_interpolated_between_the_evaluations_around_it():
    run = _run(lm_rows([10, 20, 30, 40], [5.0, 4.0, 3.0, 3.5], [0, 0, 0, 0]))
    assert lm.valid_loss_at_budget(run, 25 * PF).loss == pytest.approx(3.5)  # halfway from 4.0 to 3.0
    assert lm.valid_loss_at_budget(run, 38 * PF).loss == pytest.approx(3.4)
    at = lm.valid_loss_at_budget(run, 30 * PF)  # a budget met exactly reads that evaluation
    assert (at.loss, at.ended_early, at.before_first) == (3.0, False, False)
    late = lm.valid_loss_at_budget(run, 100 * PF)  # past the last evaluation: the run ended, no value
    assert math.isnan(late.loss) and late.ended_early
    early = lm.valid_loss_at_budget(run, 5 * PF)  # nothing evaluated yet: no value, never extrapolated
    assert math.isnan(early.loss) and early.before_first and not early.ended_early
    assert lm.valid_loss_at_budget(run, 25 * PF, "last_before").loss == 4.0  # the earlier reading, an option


def test_convergence_is_best_test_loss_as_the_paper_defines_it_ours_best_validation():
    run = _run(lm_rows([10, 20, 30, 40], [5.0, 4.0, 3.0, 3.5], [5.1, 4.1, 3.2, 3.1]))
    paper = lm.convergence(run)  # "the FLOPs model used until achieving best test loss"
    assert (paper.step, paper.valid_loss, paper.test_loss, paper.flops) == (40, 3.5, 3.1, 40 * PF)
    assert paper.flops_paper == pytest.approx(0.9 * 40 * PF)
    ours = lm.convergence(run, "valid")
    assert (ours.step, ours.valid_loss, ours.test_loss, ours.flops) == (30, 3.0, 3.2, 30 * PF)


def test_train_accuracy_target_is_read_on_the_per_epoch_curve():
    from test_report_fakes import vision_rows

    run = _run(vision_rows([5, 10, 15, 20], [0.5, 0.85, 0.92, 0.95], [10, 20], [0.80, 0.88]))
    assert vm.flops_to_train_accuracy(run, 0.9) == pytest.approx((10 + 5 * 0.05 / 0.07) * PF)
    assert vm.flops_to_train_accuracy(run, 0.95) == pytest.approx(20 * PF)
    assert vm.flops_to_train_accuracy(run, 0.4) == pytest.approx(5 * PF)  # the first epoch already: its end
    assert vm.flops_to_train_accuracy(run, 0.99) is None
    assert vm.flops_to_train_accuracy(run, 0.9, "log_window") == 15 * PF  # the earlier reading, an option
    b = vm.best_test(run)
    assert (b.step, b.accuracy, b.flops) == (20, 0.88, 20 * PF)


def test_epoch_accuracy_is_the_step_weighted_mean_of_the_log_windows_across_boundaries():
    """10 steps per epoch, windows of 4 steps: the window (8, 12] gives half its steps to each epoch.
    Compute: 1 PF per step plus a 100 PF measurement at the start of epoch 1 (inside step 12's row)."""
    accs = [0.2, 0.4, 0.6, 0.8, 1.0]  # windows ending at steps 4, 8, 12, 16, 20
    mntk = [0, 0, 100, 100, 100]
    rows = [{"step": s, "epoch": (s - 1) // 10, "split": "train", "loss": 1.0, "accuracy": a,
             "flops_total_noemb": (s + m) * PF, "flops_mntk": m * PF, "flops_paper_estimate": 0.0}
            for s, a, m in zip([4, 8, 12, 16, 20], accs, mntk)]
    run = RunMetrics("m", 0, None, pd.DataFrame(rows), {"steps_per_epoch": 10})
    ep = vm.epoch_train_accuracy(run)
    assert ep["epoch"].tolist() == [0, 1] and ep["steps"].tolist() == [10, 10]
    assert ep["accuracy"].tolist() == pytest.approx([(4 * 0.2 + 4 * 0.4 + 2 * 0.6) / 10, (2 * 0.6 + 4 * 0.8 + 4 * 1.0) / 10])
    # epoch 0 ends at step 10: 10 PF of steps, the next epoch's measurement not spread back over them
    assert ep["flops"].tolist() == pytest.approx([10 * PF, 120 * PF])
    # target 0.6 between epoch 0 (0.36) and epoch 1 (0.84): half-way in compute
    assert vm.flops_to_train_accuracy(run, 0.6) == pytest.approx((10 + 110 * 0.24 / 0.48) * PF)


# ------------------------------------------------------------------------------ Table 1 / 2
def test_table1_cells_budgets_and_bold(fake):
    root, profile = fake
    t = build_table("table1", profile, root)
    # budgets: fractions x mean vanilla computation (40 and 48 PF at their best TEST loss)
    assert [t.shared[f"budget_b{i}_pflops"] for i in (1, 2, 3)] == pytest.approx([0.5 * 0.044, 0.7 * 0.044, 0.9 * 0.044])
    assert t.shared["budget_b1_fraction"] == 0.5
    cell = lambda m, k: t.row(m).cells[k].summary  # noqa: E731
    # vanilla: b1 = 22 PF -> 4.0 + 0.2 (3.0 - 4.0) and 5.2 + 10/12 (4.2 - 5.2); b3 = 39.6 PF -> 3.48 and 3.31
    assert cell("vanilla", "val_loss_at_b1").mean == pytest.approx((3.8 + 5.2 - 10 / 12) / 2)
    assert cell("vanilla", "val_loss_at_b1").std == pytest.approx(_sd(3.8, 5.2 - 10 / 12))
    assert cell("vanilla", "val_loss_at_b3").mean == pytest.approx((3.48 + 3.31) / 2)
    assert cell("vanilla", "test_loss").mean == pytest.approx(3.05)  # best test 3.1 and 3.0
    assert cell("vanilla", "computation_pflops").mean == pytest.approx(0.044)
    assert cell("vanilla", "computation_pflops").std == pytest.approx(_sd(0.040, 0.048))
    assert cell("vanilla", "computation_paper_estimate_pflops").mean == pytest.approx(0.9 * 0.044)
    # ours beside: at the best validation loss (30 and 48 PF), test loss 3.2 and 3.0
    assert cell("vanilla", "test_loss_at_best_valid").mean == pytest.approx(3.1)
    assert cell("vanilla", "computation_at_best_valid_pflops").mean == pytest.approx(0.039)
    assert cell("rand", "computation_pflops").std == 0.0
    assert cell("mat", "val_loss_at_b1").mean == pytest.approx((2.925 + 3.05) / 2)
    # MAT seed 0 spent 24 PF in total: budgets 2 (30.8) and 3 (39.6) are past its end, no value there
    assert cell("mat", "val_loss_at_b3").n == 1 and cell("mat", "val_loss_at_b3").mean == pytest.approx(2.969)
    assert cell("mat", "test_loss").mean == pytest.approx(2.85)
    assert cell("mat", "computation_pflops").mean == pytest.approx(0.028)
    assert t.row("mat").n_seeds == 2
    assert [t.row("mat").extra[f"val_loss_at_b{i}_ended_early"] for i in (1, 2, 3)] == [0, 1, 1]
    assert t.row("mat").cells["val_loss_at_b3"].mark == "†"
    assert t.row("vanilla").cells["val_loss_at_b3"].mark == ""
    for key in ("val_loss_at_b1", "test_loss", "computation_pflops", "test_loss_at_best_valid"):
        assert t.best(key) == {"mat"}, key
    assert t.best("val_loss_at_b3") == {"vanilla"}  # MAT has a value for one seed only: it cannot compete
    md = to_markdown(t)
    assert "| MAT | 2 | **2.987 ± 0.088** |" in md
    assert "2.969† (1/2 seeds)" in md
    assert "@ 0.5 × vanilla (0.022 PFLOPs)" in md
    assert "Test loss @ best validation (ours)" in md and "best test loss" in md
    assert "† run ended" in md and "seeds [0]" in md


def test_budget_past_every_seeds_end_says_the_run_ended(tmp_path):
    profile = write_profile(tmp_path / "profiles", experiments=("table2",))
    write_all_runs(tmp_path, profile)
    for seed in (0, 1):  # MAT ends at 24 PF in both seeds; budget 3 is 35 PF
        write_run(tmp_path, profile, "table2", "mat", seed, lm_rows([8, 16, 24], [4.0, 3.0, 2.9], [4.1, 3.1, 2.8]))
    t = build_table("table2", profile, tmp_path)
    assert cell_text(t, "mat", "val_loss_at_b3") == "run ended†"


def test_table2_uses_absolute_pflops_budgets(fake):
    root, profile = fake
    t = build_table("table2", profile, root)
    assert t.shared["budget_b1_pflops"] == 0.015 and math.isnan(t.shared["budget_b1_fraction"])
    assert t.row("vanilla").label == "Switch" and t.row("rand").label == "Switch-Rand"
    # 15 PF: 4.5 (between 10 and 20 PF) and 4.95 (between 12 and 24); 35 PF: 3.25 and 4.2 - 11/12 0.8
    assert t.row("vanilla").cells["val_loss_at_b1"].summary.mean == pytest.approx((4.5 + 4.95) / 2)
    assert t.row("vanilla").cells["val_loss_at_b3"].summary.mean == pytest.approx((3.25 + 4.2 - 0.8 * 11 / 12) / 2)
    assert "Validation loss @ 0.015 PFLOPs" in to_markdown(t)


def test_no_evaluation_within_budget_is_left_out_and_marked(tmp_path):
    profile = write_profile(tmp_path / "profiles", experiments=("table2",))
    write_all_runs(tmp_path, profile)
    write_run(tmp_path, profile, "table2", "rand", 1, lm_rows([16, 20, 30, 40], [5.7, 4.7, 3.9, 3.7], [5, 5, 4, 3.8]))
    t = build_table("table2", profile, tmp_path)
    c = t.row("rand").cells["val_loss_at_b1"]  # budget 15 PF: seed 1's first evaluation is at 16 PF
    assert (c.summary.n, c.mark, c.suffix) == (1, "‡", " (1/2 seeds)")
    assert c.summary.mean == pytest.approx(5.0)  # seed 0: half-way from 5.5 (10 PF) to 4.5 (20 PF)
    assert not t.row("rand").complete("val_loss_at_b1")


# ------------------------------------------------------------------------------ Table 3
def test_table3_reached_not_reached_and_best(fake):
    root, profile = fake
    t = build_table("table3", profile, root)
    s = lambda m, k: t.row(m).cells[k].summary  # noqa: E731
    # per-epoch curves, read between the epochs around the target
    van = [10 + 5 * 0.05 / 0.07, 5 + 5 * 0.30 / 0.31]
    assert s("vanilla", "pflops_to_train_acc_90").mean == pytest.approx(np.mean(van) / 1000)
    assert s("vanilla", "pflops_to_train_acc_90").std == pytest.approx(_sd(*van) / 1000)
    assert s("rand", "pflops_to_train_acc_90").mean == pytest.approx((15 + 5 * 0.02 / 0.03 + 15) / 2 / 1000)
    assert s("mat", "pflops_to_train_acc_90").mean == pytest.approx((4 + 4 * 0.2 / 0.25 + 4 + 4 * 0.1 / 0.13) / 2 / 1000)
    assert s("vanilla", "pflops_to_train_acc_99").n == 0
    mat99 = 8 + 4 * 0.04 / 0.045
    assert s("mat", "pflops_to_train_acc_99").n == 1 and s("mat", "pflops_to_train_acc_99").mean == pytest.approx(mat99 / 1000)
    assert s("mat", "test_acc_pct").mean == pytest.approx(90.5)
    assert s("mat", "test_acc_pct").std == pytest.approx(_sd(90.0, 91.0))
    assert s("vanilla", "test_acc_pct").mean == pytest.approx(87.0)
    assert s("mat", "computation_pflops").mean == pytest.approx(0.010)  # best test at 8 and 12 PF
    assert t.best("pflops_to_train_acc_90") == {"mat"}
    assert t.best("test_acc_pct") == {"mat"}
    assert t.best("pflops_to_train_acc_99") == set()  # no method reached 99% in every seed
    assert cell_text(t, "vanilla", "pflops_to_train_acc_99") == "not reached"
    assert cell_text(t, "mat", "pflops_to_train_acc_99") == f"{mat99 / 1000:.4g} (1/2 seeds reached)"
    assert cell_text(t, "mat", "test_acc_pct") == "**90.50 ± 0.71**"
    md = to_markdown(t)
    assert "| VGG16 | 2 |" in md and "no validation split" in md and "mean over its steps" in md


# ------------------------------------------------------------------------------ files and errors
def test_write_table_writes_csv_and_markdown(fake):
    root, profile = fake
    csv_path, md_path = write_table("table1", profile, root).values()
    assert csv_path == root / "results/fake/table1.csv" and md_path.read_text().startswith("### Table 1")
    df = pd.read_csv(csv_path).set_index("method")
    assert list(df.index) == ["vanilla", "rand", "multirate", "mat"]
    assert df.loc["mat", "val_loss_at_b1_mean"] == pytest.approx((2.925 + 3.05) / 2)
    assert df.loc["mat", "val_loss_at_b1_std"] == pytest.approx(_sd(2.925, 3.05))
    assert df.loc["mat", "n_seeds"] == 2 and df.loc["mat", "val_loss_at_b1_n"] == 2
    assert df.loc["vanilla", "computation_pflops_mean"] == pytest.approx(0.044)
    assert df.loc["vanilla", "computation_paper_estimate_pflops_mean"] == pytest.approx(0.0396)
    assert df.loc["vanilla", "computation_at_best_valid_pflops_mean"] == pytest.approx(0.039)
    assert (df["budget_readout"] == "interpolate").all()
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
        build_table("table9", profile, tmp_path, kind="table")
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


def test_earlier_readings_are_config_options(tmp_path):
    profile = write_profile(tmp_path / "profiles", experiments=("table1", "table3"))
    write_all_runs(tmp_path, profile)
    text = (tmp_path / "profiles/fake.yaml").read_text()
    text = text.replace("report: {budget_fractions", "report: {budget_readout: last_before, budget_fractions")
    text = text.replace("report: {train_accuracy_targets", "report: {train_accuracy_readout: log_window, train_accuracy_targets")
    (tmp_path / "profiles/fake.yaml").write_text(text)
    from mat import profiles

    profile = profiles.load_profile("fake", tmp_path / "profiles")
    t1 = build_table("table1", profile, tmp_path)
    # the last evaluation at or below 22 PF: 4.0 (20 PF) and 5.2 (12 PF)
    assert t1.row("vanilla").cells["val_loss_at_b1"].summary.mean == pytest.approx(4.6)
    assert t1.shared["budget_readout"] == "last_before"
    t3 = build_table("table3", profile, tmp_path)
    # the first log window reaching 90%: 15 and 10 PF
    assert t3.row("vanilla").cells["pflops_to_train_acc_90"].summary.mean == pytest.approx(0.0125)
    assert "Computation until train acc ≥ 90% (PFLOPs)" in to_markdown(t3)
    (tmp_path / "profiles/fake.yaml").write_text(text.replace("budget_readout: last_before", "budget_readout: nearest"))
    with pytest.raises(ReportInputError, match="budget_readout: 'nearest'; expected one of"):
        build_table("table1", profiles.load_profile("fake", tmp_path / "profiles"), tmp_path)
