"""What a user meets at the command line: `--set` numbers, messages that blame the right thing,
config files written readable, documented `mat config` options, plain log lines in log files."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys

import pytest
import yaml

from mat.train import ConfigError, load_run_config


def test_set_reads_1e6_as_a_number():
    from mat.train.run_config import apply_overrides

    assert apply_overrides({}, ["optim.lr=1e6", "optim.eps=2e-3"]) == {"optim": {"lr": 1.0e6, "eps": 2.0e-3}}


def test_a_bad_set_value_is_blamed_not_the_config_file(run_config, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run_config("bert")))
    with pytest.raises(ConfigError, match=r"optim\.lr: got 'fast'.*\(the --set optim\.lr=fast value, not the config file\)"):
        load_run_config(path, ["optim.lr=fast"])


def test_config_write_is_readable_by_others(tmp_path):
    from mat.cli.config import write_yaml_atomic

    write_yaml_atomic({"a": 1}, tmp_path / "config.yaml")
    mode = stat.S_IMODE((tmp_path / "config.yaml").stat().st_mode)
    assert mode & stat.S_IRGRP and mode & stat.S_IROTH  # not mkstemp's 0600


def test_config_help_describes_every_option():
    out = subprocess.run([sys.executable, "-m", "mat", "config", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for words in ("profile name", "an experiment of the profile", "a method of that experiment", "the run's seed",
                  "the YAML file to write", "every run config validated"):
        assert words in text, words


def test_config_list_refuses_a_profile_with_a_bad_run(tmp_path):
    from mat.profiles import PROFILE_DIR

    prof = yaml.safe_load((PROFILE_DIR / "tiny.yaml").read_text())
    prof["experiments"]["table3"]["methods"]["mat"]["alpha"] = 1.5
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(prof))
    out = subprocess.run([sys.executable, "-m", "mat", "config", "list", "--profile-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "profile 'tiny', experiment 'table3', method 'mat': method.alpha: got 1.5" in out.stderr


def test_no_progress_bar_frames_in_a_log_file(run_config, tmp_path, monkeypatch, caplog, one_thread):
    from mat.train import train

    cfg = load_run_config(run_config("bert", train={"max_steps": 10, "eval_every": 100, "checkpoint_every": 0}))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    with caplog.at_level(logging.INFO, logger="mat.train"):
        train(cfg, tmp_path / "run", progress=True)
    lines = [r.message for r in caplog.records if r.message.startswith("step ") and "%" in r.message]
    assert len(lines) == 10 and lines[0].startswith("step 1/10 (10%)")
