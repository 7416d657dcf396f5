"""Figures: seed bands on a common compute grid, reference lines, files written, and the CSV beside
a figure holding exactly the plotted numbers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mat.__main__ import main
from mat.report.curves import seed_band
from mat.report.targets import build as figure_data, write as write_figure
from mat.report.runs import ReportInputError
from test_report_fakes import write_all_runs, write_profile


@pytest.fixture()
def fake(tmp_path):
    profile = write_profile(tmp_path / "profiles", experiments=("table1", "table3"))
    write_all_runs(tmp_path, profile)
    return tmp_path, profile


def test_seed_band_interpolates_on_the_overlap():
    band = seed_band([(np.array([10, 20, 30, 40.0]), np.array([5.0, 4.0, 3.0, 3.5])),
                      (np.array([12, 24, 36, 48.0]), np.array([5.2, 4.2, 3.4, 3.1]))], points=5)
    assert band["x"].tolist() == [12, 19, 26, 33, 40]  # from the latest start to the earliest end
    # at 12: seed 0 interpolates 5.0 -> 4.0 to 4.8; seed 1 is 5.2
    assert band["mean"].iloc[0] == pytest.approx(5.0)
    assert band["std"].iloc[0] == pytest.approx(np.std([4.8, 5.2], ddof=1))
    # at 40: seed 0 is 3.5; seed 1 interpolates 3.4 -> 3.1 over 36..48 to 3.3
    assert band["mean"].iloc[-1] == pytest.approx(3.4)
    assert (band["n_seeds"] == 2).all()
    with pytest.raises(ValueError, match="do not overlap"):
        seed_band([(np.array([1.0, 2.0]), np.array([0, 0])), (np.array([3.0, 4.0]), np.array([0, 0]))])
    one = seed_band([(np.array([1.0, 2.0]), np.array([3.0, 5.0]))], points=3)
    assert one["mean"].tolist() == [3.0, 4.0, 5.0] and one["std"].isna().all()


def test_fig1b_data_and_drawn_lines_match(fake):
    root, profile = fake
    fd = figure_data("fig1b", profile, root)
    curves = fd.data[fd.data.kind == "curve"]
    assert sorted(set(curves.method)) == ["mat", "vanilla"]
    van = curves[curves.method == "vanilla"]
    assert van.pflops.iloc[0] == pytest.approx(0.012) and van.pflops.iloc[-1] == pytest.approx(0.040)
    assert van["mean"].iloc[0] == pytest.approx(5.0) and van["mean"].iloc[-1] == pytest.approx(3.4)
    assert fd.title.endswith("fake profile: generated data, not paper numbers")
    fig = fd.draw(fd)
    try:
        lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
        assert set(lines) == {"BERT", "MAT"}
        np.testing.assert_array_equal(lines["BERT"].get_xdata(), van.pflops.to_numpy())
        np.testing.assert_array_equal(lines["BERT"].get_ydata(), van["mean"].to_numpy())
        assert "PFLOPs" in fig.axes[0].get_xlabel() and "loss" in fig.axes[0].get_ylabel()
    finally:
        plt.close(fig)


def test_curves_table1_files_and_budget_lines(fake):
    root, profile = fake
    paths = write_figure("curves_table1", profile, root)
    assert paths["png"] == root / "paper_figures/fake/curves_table1.png"
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["pdf"].read_bytes()[:5] == b"%PDF-"
    df = pd.read_csv(paths["csv"])
    budgets = df[df.kind == "budget"]
    assert budgets.pflops.tolist() == pytest.approx([0.022, 0.0308, 0.0396])  # the table's budgets (vanilla at its best test loss)
    mat = df[(df.kind == "curve") & (df.method == "mat")]
    assert mat.pflops.max() == pytest.approx(0.024)  # MAT seed 0 ended at 24 PF: no extrapolation
    assert set(df[df.kind == "curve"].method) == {"vanilla", "rand", "multirate", "mat"}
    fd = figure_data("curves_table1", profile, root)
    fig = fd.draw(fd)
    try:
        dotted = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == ":"]
        assert sorted(ln.get_xdata()[0] for ln in dotted) == pytest.approx([0.022, 0.0308, 0.0396])
    finally:
        plt.close(fig)


def test_curves_table3_two_panels_and_targets(fake):
    root, profile = fake
    paths = write_figure("curves_table3", profile, root)
    df = pd.read_csv(paths["csv"])
    assert set(df.panel) == {"train_accuracy", "test_accuracy"}
    targets = df[df.kind == "target"]
    assert targets["mean"].tolist() == [90.0, 99.0] and set(targets.panel) == {"train_accuracy"}
    test_mat = df[(df.panel == "test_accuracy") & (df.method == "mat")]
    # test accuracy of MAT: seeds (8 PF: 90%, 12 PF: 89%) and (87%, 91%) -> mean 88.5 at 8 PF, 90 at 12 PF
    assert test_mat["mean"].iloc[0] == pytest.approx(88.5) and test_mat["mean"].iloc[-1] == pytest.approx(90.0)


def test_figure_errors_write_nothing(fake, capsys):
    root, _ = fake
    args = ["--profile", "fake", "--root", str(root), "--profile-dir", str(root / "profiles")]
    assert main(["figure", "curves_table2", *args]) == 1  # the profile has no table2 experiment
    assert "needs experiments ['table2']" in capsys.readouterr().err
    (root / "results/fake/runs/table1/vanilla/seed0/summary.json").unlink()
    assert main(["figure", "fig1b", *args]) == 1
    assert "vanilla/seed0: missing summary.json" in capsys.readouterr().err
    assert not (root / "paper_figures").exists()
    with pytest.raises(ReportInputError, match="unknown figure"):
        figure_data("fig9", {"experiments": {}}, root, kind="figure")
