"""MAT's evaluation schedule as the paper counts it (0-based epochs) and as each profile sets it:
every MAT run of `tiny` and `small` evaluates at least 3 times (Eq. 6 acts from t = 2) and prunes
where it should; `mat config show/write` warns when a schedule falls short."""

from __future__ import annotations

import shutil
from argparse import Namespace

import pytest

from mat import profiles, schedule
from mat.cli import config as config_cli


def _mat_runs(name: str):
    prof = profiles.load_profile(name)
    for exp, spec in prof["experiments"].items():
        for method, block in spec["methods"].items():
            if schedule.on_mat_schedule(block):
                yield exp, method, profiles.run_config(prof, exp, method, 0)


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_every_mat_run_of_tiny_and_small_gets_at_least_three_evaluations(name):
    runs = list(_mat_runs(name))
    assert runs
    for exp, method, cfg in runs:
        evals = schedule.mat_evaluations(cfg)
        assert evals is not None and len(evals) >= schedule.MIN_EVALUATIONS, (exp, method, evals)
        assert schedule.schedule_warnings(cfg) == [], (exp, method)
        if cfg["method"]["name"] == "mat_prune":  # pruning happens inside the run
            assert cfg["method"]["prune_epoch"] < schedule.run_epochs(cfg)


def test_paper_schedule_is_0_based_and_eq6_acts_about_once_for_bert():
    """'starts from the 5th epoch and performs every 8 epochs' = epochs 4, 12, 20; 12k steps at
    batch 8 are about 20 epochs of WikiText-2, so the third evaluation (t = 2) is the last."""
    prof = profiles.load_profile("paper")
    cfg = profiles.run_config(prof, "table1", "mat", 0)
    assert (cfg["method"]["start_epoch"], cfg["method"]["interval"]) == (4, 8)
    assert 20 < schedule.run_epochs(cfg) < 21
    assert schedule.mat_evaluations(cfg) == [4, 12, 20]
    prune = profiles.run_config(prof, "table5", "mat_prune", 0)["method"]
    assert prune["prune_epoch"] == 14  # "at the 15th epoch"


def test_evaluation_epochs_need_a_step_of_their_epoch():
    assert schedule.evaluation_epochs(4, 8, 20.0) == [4, 12]  # epoch 20 is never started
    assert schedule.evaluation_epochs(4, 8, 20.4) == [4, 12, 20]
    assert schedule.mat_evaluations({"method": {"name": "vanilla"}, "train": {"epochs": 9}}) is None


def test_config_show_and_write_warn_when_mat_gets_fewer_than_three(tmp_path, capsys):
    shutil.copy(profiles.PROFILE_DIR / "tiny.yaml", tmp_path / "tiny.yaml")
    text = (tmp_path / "tiny.yaml").read_text()
    line = "mat: {name: mat, alpha: 0.1, beta: 1.0e-3, start_epoch: 1, interval: 1}"
    assert text.count(line) == 2  # table1 and table7
    (tmp_path / "tiny.yaml").write_text(text.replace(line, line.replace("start_epoch: 1", "start_epoch: 4"), 1))
    args = dict(profile="tiny", profile_dir=str(tmp_path), experiment="table1", method="mat", seed=0)
    assert config_cli.run(Namespace(action="show", out=None, **args)) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "MAT evaluates 2 time(s) (epochs [4, 5]" in err and "Eq. 6" in err
    assert config_cli.run(Namespace(action="write", out=str(tmp_path / "run.yaml"), **args)) == 0
    assert "MAT evaluates 2 time(s)" in capsys.readouterr().err
    # the shipped profile: no warning
    assert config_cli.run(Namespace(action="show", out=None, **{**args, "profile_dir": str(profiles.PROFILE_DIR)})) == 0
    assert "warning" not in capsys.readouterr().err
