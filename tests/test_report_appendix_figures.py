"""The analysis figures (1a, 2, 3, 4, 5) from hand-made logs: onset of overfitting, condition numbers,
Eq. 4's split of the spectrum, histogram counts and Section 5.2's observations; files and errors."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mat import profiles
from mat.__main__ import main
from mat.report import targets as af
from mat.report import head_training_figure as ht
from mat.report import mntk_figures as mf
from mat.report import overfit_figure as of
from mat.report.runs import ReportInputError
from test_report_appendix_fakes import evaluations, metric_row, mntk_row, module_rows, write_profile, write_run

# ------------------------------------------------------------------------------ pure measures


def test_overfitting_onset_definition():
    steps = [10, 20, 30, 40, 50]
    on = of.overfitting_onset(steps, [5, 4, 3, 3.2, 3.5], [5, 4, 3, 2.5, 2], steps_per_epoch=10)
    assert (on.epoch, on.step, on.valid_loss) == (3.0, 30, 3)
    tie = of.overfitting_onset(steps, [5, 3, 3, 3.2, 3.5], [5, 4, 3, 2.5, 2], 20)
    assert (tie.step, tie.epoch) == (20, 1.0)  # the earliest of equal minima
    last = of.overfitting_onset(steps, [5, 4, 3, 2.9, 2.8], [5, 4, 3, 2.5, 2], 10)
    assert last.epoch is None and last.reason.startswith(of.NO_ONSET) and "last evaluation" in last.reason
    flat_train = of.overfitting_onset(steps, [5, 4, 3, 3.2, 3.5], [5, 4, 3, 3.1, 3.2], 10)
    assert flat_train.epoch is None and "training loss does not fall" in flat_train.reason


def test_train_loss_between_evaluations():
    train = pd.DataFrame({"step": [5, 10, 15, 20, 25], "loss": [6.0, 4.0, 3.0, 2.0, 1.0]})
    valid = pd.DataFrame({"step": [10, 20, 30]})
    assert of.train_loss_at_evaluations(train, valid).tolist() == [5.0, 2.5, 1.0]


def test_condition_number_is_undefined_for_a_zero_lambda_min():
    k = mf.condition_numbers(pd.DataFrame({"lambda_max": [100.0, 50.0], "lambda_min": [4.0, 0.0]}))
    assert k.iloc[0] == 25.0 and math.isnan(k.iloc[1])


def test_normalized_spectrum_and_eq4_split():
    df = pd.DataFrame([mntk_row(4, 40, "head", "a", 0, 0, [100.0, 8.0, 1.0], lambda_min=0.5),
                       mntk_row(4, 40, "head", "b", 0, 1, [20.0, 10.0, 0.0])])
    norm, thr, counts = mf.normalized_spectrum(df, alpha=0.1)
    np.testing.assert_allclose(np.sort(norm), [0, 0.01, 0.08, 0.1, 0.2, 1.0])
    assert thr == pytest.approx((0.0 + (100.0 - 0.0) * 0.1) / 100)  # Eq. 4 with min = min(lambda_min) = 0
    assert counts == {"eigenvalues": 6, "information": 3, "nuisance": 3, "zero": 1, "modules": 2, "modules_information": 2}


def test_highlighted_heads():
    df = pd.DataFrame({"module": ["a", "a", "b", "b", "c", "c"], "lambda_max": [10.0, 30, 1, 2, 5, 50]})
    assert mf.highlight_heads(df) == {"c": "largest mean λmax", "b": "smallest mean λmax", "a": "most varying λmax"}


SEED0 = {"h0": [(9, 9, False)] * 5, "h1": [(9, 9, False)] + [(0, 9, False)] * 4, "h2": [(0, 9, False)] * 5,
         "h3": [(3, 9, False)] * 2 + [(0, 9, False)] * 3}
SEED1 = {"h0": [(1, 9, False)] + [(0, 9, False)] * 4, "h1": [(0, 9, False)] * 5,
         "h2": [(2, 9, False)] * 3 + [(0, 9, False)] * 2, "h3": [(9, 9, False)] * 5}


def test_epochs_trained_observations_and_histogram():
    shares = []
    for spec in (SEED0, SEED1):
        mods = pd.DataFrame(module_rows(spec))
        shares += ht.epochs_trained(mods)["share"].tolist()
    assert shares == [1.0, 0.2, 0.0, 0.4, 0.2, 0.0, 0.6, 1.0]
    obs = ht.observations(pd.Series(shares))
    assert obs == {"heads": 8, "share_rarely_trained": 0.5, "mean_share": pytest.approx(3.4 / 8), "share_never_updated": 0.25}
    hist = ht.histogram(pd.Series(shares))
    assert hist["heads"].tolist() == [2, 0, 2, 0, 1, 0, 1, 0, 0, 2]  # 3/5 in [0.6, 0.7), 1.0 in the last bin
    assert ht.observation_lines(obs)[0].startswith("50% of heads trained in ≤ 20% of the epochs")


# ------------------------------------------------------------------------------ figures from runs
def _fake_runs(root):
    profile = write_profile(root / "profiles", table7=False)
    heads = [(l, i) for l in (0, 1) for i in (0, 1)]
    for seed in (0, 1):
        head_rows = [mntk_row(e, 10 * e, "head", f"layer{l}.head{i}", l, i,
                              [10.0 ** (l + 1) * (i + 1) * (e + 1 + seed), 1.0, 0.5], effective_rank=1.0 + l + 0.1 * e)
                     for e in range(3) for l, i in heads]
        layer_rows = [mntk_row(e, 10 * e, "layer", f"layer{l}", l, 0, [1000.0 * (l + 1) / (e + 1), 10.0, 1.0],
                               lambda_min=0.0 if (l, e) == (1, 2) else 2.0) for e in range(3) for l in (0, 1)]
        write_run(root, "table1", "vanilla", seed, evaluations([10, 20, 30], [5, 4, 3], [5, 4, 3]),
                  module_rows({f"h{k}": [(10, 10, False)] * 3 for k in range(4)}), head_rows + layer_rows)
        # MAT: a warm-up epoch 0 (every head trains), then its first evaluation (rows with a threshold) at
        # epoch 1; a logging-only mNTK at epoch 0 carries no threshold
        spec = SEED0 if seed == 0 else SEED1
        warm = {h: [(9, 9, False)] + per_epoch for h, per_epoch in spec.items()}
        mods = module_rows(warm)
        evals = [{**mntk_row(e, 9 * e, "head", f"layer0.head{i}", 0, i, [1.0, 0.5]), "threshold": 0.7 if e else ""}
                 for e in range(6) for i in range(4)]
        write_run(root, "table1", "mat", seed, evaluations([10, 20, 30], [5, 4, 3], [5, 4, 3]), mods, evals)
        # overfit: valid lowest at step 30 on the mean of seeds; train falls throughout
        valid = [5.0, 4.0, 3.0 + 0.1 * seed, 3.3, 3.6]
        metrics = [metric_row(s, "train", 6.0 - 0.1 * s, s) for s in range(5, 55, 5)]
        metrics += [metric_row(10 * (k + 1), "valid", v, 10 * (k + 1)) for k, v in enumerate(valid)]
        metrics += [metric_row(10 * (k + 1), "test", v, 10 * (k + 1)) for k, v in enumerate(valid)]
        lam = [mntk_row(e, 10 * e, "layer", f"layer{l}", l, 0, [100.0 / (e + 1) + l + seed, 1.0]) for e in range(5) for l in (0, 1)]
        write_run(root, "overfit", "vanilla", seed, metrics, mntk=lam, summary={"steps_per_epoch": 10})
    spec = [mntk_row(e, 10 * e, "head", f"layer0.head{i}", 0, i, [v * (e + 1) for v in vals], lambda_min=0.0)
            for e in (0, 2) for i, vals in enumerate([[100.0, 8.0, 1.0], [20.0, 10.0, 0.5]])]
    write_run(root, "spectrum", "vanilla", 0, evaluations([10, 20], [5, 4], [5, 4]), mntk=spec,
              summary={"config": {"ntk": {"samples": 8, "top_k": 3}}})
    return profile


@pytest.fixture()
def fake(tmp_path):
    return tmp_path, _fake_runs(tmp_path)


def test_fig1a_and_fig2_data(fake):
    root, profile = fake
    a = af.build("fig1a", profile, root)
    assert set(a.data.seed) == {0} and len(a.data) == 12  # first seed, 4 heads x 3 epochs
    assert a.facts["highlight"]["layer1.head1"] == "largest mean λmax"
    assert a.facts["highlight"]["layer0.head0"] == "smallest mean λmax"
    assert "not paper numbers" in a.title and "fake profile" in a.title
    b = af.build("fig2", profile, root)
    assert b.facts["spectrum_epoch"] == 2 and "epoch 2 (the last logged; the paper uses epoch 10)" in b.title
    spec = b.data[b.data.panel == "a_spectrum"]
    assert spec[spec.layer == 1].value.tolist() == [2000.0 / 3, 10.0, 1.0]
    kappa = b.data[b.data.panel == "c_kappa"].set_index(["layer", "x"]).value
    assert kappa[(0, 0)] == 500.0 and math.isnan(kappa[(1, 2)]) and b.facts["infinite_kappa"] == 1
    assert "1 point(s) with λmin = 0" in b.subtitle


def test_fig3_marks_the_onset_and_draws_the_mean_curves(fake):
    root, profile = fake
    f = af.build("fig3", profile, root)
    assert f.facts["onset"].epoch == 3.0 and f.facts["onset"].step == 30
    valid = f.data[f.data.series == "valid_loss"]
    assert valid.value.tolist() == pytest.approx([5.0, 4.0, 3.05, 3.3, 3.6]) and valid.epoch.tolist() == [1, 2, 3, 4, 5]
    lam = f.data[(f.data.series == "lambda_max") & (f.data.layer == 1)]
    assert lam.value.tolist() == pytest.approx([100.0 / (e + 1) + 1.5 for e in range(5)])
    fig = f.draw(f)
    try:
        ax = fig.axes[0]
        lines = {ln.get_label(): ln for ln in ax.get_lines()}
        np.testing.assert_allclose(lines["validation loss"].get_ydata(), valid.value)
        assert lines["onset of overfitting"].get_xdata()[0] == 3.0
        assert len([a for a in fig.axes if a.get_visible()]) == 3  # losses + one panel per layer
    finally:
        plt.close(fig)


def test_fig3_without_onset_says_so(fake):
    root, profile = fake
    for seed in (0, 1):  # validation loss falling to the end
        d = root / f"results/fake/runs/overfit/vanilla/seed{seed}/metrics.csv"
        m = pd.read_csv(d)
        m.loc[m.split == "valid", "loss"] = [5.0, 4.0, 3.0, 2.9, 2.8]
        m.to_csv(d, index=False)
    f = af.build("fig3", profile, root)
    assert f.facts["onset"].epoch is None and of.NO_ONSET in f.title and "onset" not in set(f.data.series)


def test_fig4_and_fig5_data(fake):
    root, profile = fake
    f4 = af.build("fig4", profile, root)
    assert f4.facts["epoch"] == 2 and f4.facts["threshold"] == pytest.approx(0.1)
    assert (f4.facts["information"], f4.facts["nuisance"]) == (3, 3)
    bins = f4.data[f4.data.kind == "bin"]
    assert bins["count"].sum() == 6 and bins[bins.left >= 0.1 - 1e-12]["count"].sum() == 3
    assert "of S = 8 each (mntk.csv keeps the top 3; the smallest 5 per head are not in this histogram)" in f4.subtitle
    f5 = af.build("fig5", profile, root)  # the warm-up epoch 0 is not counted: heads can show 0
    assert f5.facts["first_epochs"] == {0: 1, 1: 1}
    assert f5.facts["share_never_updated"] == 0.25 and f5.facts["heads"] == 8
    assert f5.data[f5.data.kind == "bin"]["heads"].tolist() == [2, 0, 2, 0, 1, 0, 1, 0, 0, 2]
    assert "from its first evaluation on" in f5.title and "warm-up" in f5.subtitle
    # the other reading, every epoch: one more epoch each, in which every head trained
    (root / "profiles/fake.yaml").write_text((root / "profiles/fake.yaml").read_text().replace(
        "report: {budget_fractions", "report: {fig5_epochs: all, budget_fractions"))
    every = af.build("fig5", profiles.load_profile("fake", root / "profiles"), root)
    assert every.facts["share_never_updated"] == 0.0
    assert sorted(every.data[every.data.kind == "head"]["share"]) == pytest.approx(sorted(
        (k + 1) / 6 for k in (5, 1, 0, 2, 1, 0, 3, 5)))


def test_every_figure_draws_and_fig5_writes_png_pdf_csv(fake, capsys):
    root, profile = fake
    for name in ("fig1a", "fig2", "fig4"):  # drawn only (saving every figure would slow the suite)
        f = af.build(name, profile, root)
        fig = f.draw(f)
        try:
            assert fig._suptitle.get_text() == f.title and len(fig.axes) >= 1
        finally:
            plt.close(fig)
    code = main(["figure", "fig5", "--profile", "fake", "--root", str(root), "--profile-dir", str(root / "profiles")])
    assert code == 0 and "fig5.png" in capsys.readouterr().out
    out = root / "paper_figures/fake"
    assert (out / "fig5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "fig5.pdf").read_bytes()[:5] == b"%PDF-"
    written = pd.read_csv(out / "fig5.csv")
    expected = af.build("fig5", profile, root).data
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)  # the CSV holds the plotted numbers


def test_missing_logs_are_named_and_nothing_is_written(fake, capsys):
    root, profile = fake
    (root / "results/fake/runs/spectrum/vanilla/seed0/mntk.csv").unlink()
    code = main(["figure", "fig4", "--profile", "fake", "--root", str(root), "--profile-dir", str(root / "profiles")])
    assert code == 1 and "spectrum/vanilla/seed0/mntk.csv: missing" in capsys.readouterr().err
    assert not (root / "paper_figures/fake/fig4.png").exists() and not (root / "paper_figures/fake/fig4.csv").exists()
    d = root / "results/fake/runs/table1/vanilla/seed0/mntk.csv"
    m = pd.read_csv(d)
    m[m.partition == "head"].to_csv(d, index=False)
    with pytest.raises(ReportInputError, match=r"no rows with partition='layer' \(the file has \['head'\]\)"):
        af.build("fig2", profile, root)
    with pytest.raises(ReportInputError, match="unknown table or figure"):
        af.build("fig9", profile, root)
