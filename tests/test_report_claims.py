"""The claims check: each verdict rule on constructed numbers (holds / does not hold /
inconclusive), then the whole check on tables built from hand-made runs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mat import profiles
from mat.__main__ import main
from mat.report import verdicts as v
from mat.report.claims import CLAIMS, evaluate, paper_text_disagrees
from mat.report.runs import ReportInputError
from mat.report.targets import write as write_table
from test_report_fakes import write_all_runs, write_profile


def V(mean, std, n=2, n_seeds=2):
    return v.Value(mean, std, n, n_seeds)


# ------------------------------------------------------------------------------ rules
def test_better_rule():
    assert v.better(V(3.0, 0.1), {"a": V(3.5, 0.1), "b": V(3.4, 0.2)}, True).verdict == v.HOLDS
    # 3.0 vs 3.1: a gap of 0.1 is within sqrt(0.1^2 + 0.1^2) = 0.141
    j = v.better(V(3.0, 0.1), {"a": V(3.5, 0.1), "b": V(3.1, 0.1)}, True)
    assert j.verdict == v.UNSURE and "b" in j.note
    j = v.better(V(3.0, 0.1), {"a": V(2.5, 0.1)}, True)
    assert j.verdict == v.FAILS and "a" in j.note
    assert v.better(V(93.9, 0.05), {"a": V(93.0, 0.1)}, False).verdict == v.HOLDS  # higher is better
    assert v.better(V(3.0, math.nan, 1, 1), {"a": V(5.0, math.nan, 1, 1)}, True).verdict == v.UNSURE  # one seed


def test_not_worse_rule():
    assert v.not_worse(V(4.46, 0.04), V(4.48, 0.03), "vanilla", True).verdict == v.HOLDS
    assert v.not_worse(V(4.50, 0.04), V(4.48, 0.03), "vanilla", True).verdict == v.UNSURE  # 0.02 < 0.05
    assert v.not_worse(V(4.60, 0.04), V(4.48, 0.03), "vanilla", True).verdict == v.FAILS  # 0.12 > 0.05
    assert v.not_worse(V(93.0, 0.1), V(93.77, 0.08), "vanilla", False).verdict == v.FAILS
    assert v.not_worse(V(4.0, 0.1, n=1), V(4.48, 0.03), "vanilla", True).verdict == v.UNSURE  # a seed missing


def test_about_rule_on_perplexity_and_ratios():
    # Table 1 of the paper: 1 - exp(4.27 - 4.41) = 13.1%, range with combined std 0.058: 7.8% to 18.0%
    j = v.about_perplexity(V(4.27, 0.03), V(4.41, 0.05), 15.0)
    assert j.verdict == v.HOLDS and j.ours.startswith("13.1%")
    # a clear but much smaller reduction: 1 - exp(-0.02) = 2%, range 1.0% to 3.0%
    j = v.about_perplexity(V(4.39, 0.005), V(4.41, 0.005), 15.0)
    assert j.verdict == v.FAILS and "smaller" in j.note
    assert v.about_perplexity(V(4.39, 0.05), V(4.41, 0.05), 15.0).verdict == v.UNSURE  # range holds 0
    assert v.about_perplexity(V(4.60, 0.01), V(4.41, 0.01), 15.0).verdict == v.FAILS  # MAT worse
    # computation 16.5 vs 28.7: 42.5%; relative stds 0.5/16.5 and 0.5/28.7
    j = v.about_ratio(V(16.5, 0.5), V(28.7, 0.5), 41.0)
    assert j.verdict == v.HOLDS and j.ours.startswith("42.5%")
    j = v.about_ratio(V(5.0, 0.1), V(28.7, 0.5), 41.0)
    assert j.verdict == v.FAILS and "larger" in j.note


def test_sooner_rule_when_a_target_is_never_reached():
    assert v.sooner(V(5.0, 0.1), V(8.0, 0.2), "vanilla", 9, 9).verdict == v.HOLDS
    never = V(math.nan, math.nan, n=0)
    assert v.sooner(V(5.0, 0.1), never, "vanilla", 9, 12).verdict == v.HOLDS  # vanilla ran 12 PF in vain
    assert v.sooner(V(5.0, 0.1), never, "vanilla", 9, 4).verdict == v.UNSURE  # vanilla stopped at 4 PF
    assert v.sooner(never, V(5.0, 0.1), "vanilla", 12, 9).verdict == v.FAILS
    assert v.sooner(V(5.0, math.nan, n=1), never, "vanilla", 9, 12).verdict == v.UNSURE


def test_paper_text_vs_its_own_tables():
    by_id = {c.id: c for c in CLAIMS}
    assert paper_text_disagrees(by_id["table1_test_ppl"]) is None  # 13.1% vs "about 15%"
    assert "5.8%" in paper_text_disagrees(by_id["table2_test_ppl"])  # 1 - exp(1.68 - 1.74)
    assert paper_text_disagrees(by_id["table2_val_logppl_b1"]) is None  # (3.16 - 2.34) / 3.16 = 25.9%


# ------------------------------------------------------------------------------ on built tables
@pytest.fixture()
def built(tmp_path):
    profile = write_profile(tmp_path / "profiles", experiments=("table1", "table3"))
    write_all_runs(tmp_path, profile)
    for t in ("table1", "table3"):
        write_table(t, profile, tmp_path)
    return tmp_path, profile


def test_claims_on_hand_made_tables(built):
    root, profile = built
    res = {r.claim.id: r for r in evaluate(profile, root)}
    assert len(res) == len(CLAIMS)
    # the paper's convergence (best test loss): MAT 2.85 ± 0.071 vs vanilla 3.05 ± 0.071, rand 3.75,
    # multirate 3.55: beyond the spreads
    assert res["table1_test_best"].verdict == v.HOLDS
    assert res["table1_reach"].verdict == v.HOLDS  # MAT at budget 1: 2.99; vanilla at budget 3: 3.40
    # 1 - exp(2.85 - 3.05) = 18.1%, range 9.5% to 25.9% overlaps 11.25-18.75%
    assert res["table1_test_ppl"].verdict == v.HOLDS and res["table1_test_ppl"].ours.startswith("18.1%")
    # budget 2 lies past the end of MAT's seed 0: one seed has a value, nothing is decided
    assert res["table1_val_best_b2"].verdict == v.UNSURE and "1/2 seeds" in res["table1_val_best_b2"].note
    assert res["table1_val_best_b1"].verdict == v.HOLDS
    assert "0.7 × vanilla" in res["table1_val_best_b2"].text and "paper: 15 PFLOPs" in res["table1_val_best_b2"].text
    # computation claims judged twice: measured, and on the paper's accounting (0.9 x here)
    acc = res["table1_compute_least_paper_accounting"]
    assert acc.claim.key == "computation_paper_estimate_pflops" and acc.verdict == res["table1_compute_least"].verdict
    assert acc.ours.startswith("MAT 0.0252") and acc.paper_table == res["table1_compute_least"].paper_table
    assert res["table2_test_ppl"].verdict == v.NOT_RUN  # the profile has no table2
    assert res["table3_faster_95"].verdict == v.UNSURE  # the fake profile's targets are 90% and 99%
    assert "pflops_to_train_acc_95" in res["table3_faster_95"].note
    assert res["table3_faster_99"].verdict == v.UNSURE  # MAT reached 99% in 1 of 2 seeds
    assert res["table3_test_acc"].verdict == v.HOLDS  # 90.5 vs 87.0


def test_claims_verdict_flips_with_the_numbers(built):
    root, profile = built
    path = root / "results/fake/table1.csv"
    df = pd.read_csv(path)
    df.loc[df.method == "rand", "test_loss_mean"] = 2.0  # a baseline now clearly beats MAT
    df.loc[df.method == "multirate", "test_loss_mean"] = 2.9  # and one is within MAT's spread
    df.to_csv(path, index=False)
    res = {r.claim.id: r for r in evaluate(profile, root)}
    assert res["table1_test_best"].verdict == v.FAILS and "rand" in res["table1_test_best"].note
    df.loc[df.method == "rand", "test_loss_mean"] = 3.75
    df.to_csv(path, index=False)
    res = {r.claim.id: r for r in evaluate(profile, root)}
    assert res["table1_test_best"].verdict == v.UNSURE and "multirate" in res["table1_test_best"].note


def test_claims_cli_writes_both_files_and_missing_table_is_an_error(built, capsys):
    root, _ = built
    args = ["claims", "--profile", "fake", "--root", str(root), "--profile-dir", str(root / "profiles")]
    assert main(args) == 0
    df = pd.read_csv(root / "results/fake/claims.csv")
    assert set(df.verdict) <= {v.HOLDS, v.FAILS, v.UNSURE, v.NOT_RUN}
    assert df.set_index("id").loc["table1_test_best", "verdict"] == v.HOLDS
    md = (root / "results/fake/claims.md").read_text()
    assert "## Rules" in md and "combined std" in md and "| table1_test_best |" in md
    (root / "results/fake/table3.csv").unlink()
    (root / "results/fake/claims.md").unlink()
    assert main(args) == 1
    assert "table3.csv: missing" in capsys.readouterr().err
    assert not (root / "results/fake/claims.md").exists()
    with pytest.raises(ReportInputError, match="python -m mat table table3"):
        evaluate(profiles.load_profile("fake", root / "profiles"), root)
