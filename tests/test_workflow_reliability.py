"""The workflow refuses bad configs when it is parsed, quotes what reaches a shell, rebuilds a data
folder made with other options, and lets an edited run discard stale resume state. Each test dry-
runs Snakemake in a scratch copy of the workflow with an edited tiny profile."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _workflow(tmp_path: Path, edit=None) -> Path:
    for name in ("Snakefile", "environment.yml"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, tmp_path / name)
    for name in ("workflow", "config"):
        shutil.copytree(ROOT / name, tmp_path / name)
    if edit is not None:
        path = tmp_path / "config/profiles/tiny.yaml"
        prof = yaml.safe_load(path.read_text())
        edit(prof)
        path.write_text(yaml.safe_dump(prof, sort_keys=False))
    return tmp_path


def _snakemake(where: Path, *args):
    exe = shutil.which("snakemake", path=str(BIN)) or "snakemake"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([exe, *args], cwd=where, capture_output=True, text=True, timeout=600, env=env)


def _bad_alpha(prof):
    prof["experiments"]["table3"]["methods"]["mat"]["alpha"] = 1.5


def _bad_lr(prof):
    prof["experiments"]["table1"]["run"]["optim"] = {**prof["experiments"]["table1"]["run"]["optim"], "lr": "fast"}


def _no_batch_size(prof):
    train = dict(prof["experiments"]["table3"]["run"]["train"])
    del train["batch_size"]
    prof["experiments"]["table3"]["run"]["train"] = train


@pytest.mark.parametrize("edit, expected", [
    (_bad_alpha, "experiment 'table3', method 'mat': method.alpha: got 1.5"),
    (_bad_lr, "experiment 'table1', method 'vanilla': optim.lr: got 'fast'"),
    (_no_batch_size, "experiment 'table3', method 'vanilla': train.batch_size: missing (required)"),
])
def test_dry_run_fails_at_once_on_a_bad_run_config(tmp_path, edit, expected):
    out = _snakemake(_workflow(tmp_path, edit), "-n", "--cores", "1")
    assert out.returncode != 0
    assert "profile 'tiny'" in out.stdout + out.stderr
    assert expected in out.stdout + out.stderr


def test_shell_injection_in_dataset_options_is_refused(tmp_path):
    def inject(prof):
        prof["datasets"]["tiny-text"]["options"]["seed"] = "0; echo INJECTED"

    out = _snakemake(_workflow(tmp_path, inject), "-n", "-p", "--cores", "1", "datasets")
    assert out.returncode != 0
    assert "datasets.tiny-text.options.seed: expected an integer, got '0; echo INJECTED'" in out.stdout + out.stderr

    def unknown(prof):
        prof["datasets"]["tiny-text"]["options"]["sizes"] = "1,2"

    (tmp_path / "b").mkdir()
    out = _snakemake(_workflow(tmp_path / "b", unknown), "-n", "--cores", "1", "datasets")
    assert out.returncode != 0
    assert "datasets.tiny-text.options.sizes: unknown option" in out.stdout + out.stderr


def test_a_source_with_shell_characters_is_quoted(tmp_path):
    def source(prof):
        prof["datasets"]["c10"] = {"name": "cifar10", "source": "/tmp/my data; echo INJECTED"}

    out = _snakemake(_workflow(tmp_path, source), "-n", "-p", "--cores", "1", "data/c10/mat-data.json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "--source '/tmp/my data; echo INJECTED'" in out.stdout


def test_folder_made_with_other_options_is_rebuilt_and_train_discards_stale_state(tmp_path):
    where = _workflow(tmp_path)
    from mat.data import get

    get("tiny-text", where / "data/tiny-text", seed=0, size=1000, eval_size=1000)  # not the profile's 30000,6000
    out = _snakemake(where, "-n", "-p", "--cores", "1", "results/tiny/runs/table1/mat/seed0/summary.json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rule dataset_rebuild:" in out.stdout
    assert "--replace" in out.stdout
    assert "--discard-stale" in out.stdout


def test_mat_data_get_replace_swaps_in_the_requested_dataset(tmp_path):
    from mat.data import get
    from mat.data.manifest import read

    out = get("tiny-text", tmp_path / "d", seed=0, size=1000, eval_size=1000)
    from mat.data import DataError

    with pytest.raises(DataError, match="choose another --out"):
        get("tiny-text", out, seed=1, size=1000, eval_size=1000)
    get("tiny-text", out, seed=1, size=1000, eval_size=1000, replace=True)
    assert read(out)["options"]["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # nothing left aside


def test_naming_a_committed_table_whose_runs_are_missing_trains_them(tmp_path):
    where = _workflow(tmp_path)
    (where / "results/tiny").mkdir(parents=True)
    for ext in ("csv", "md"):  # a fresh clone: the committed table, no runs
        shutil.copy(ROOT / f"results/tiny/table3.{ext}", where / f"results/tiny/table3.{ext}")
    out = _snakemake(where, "-n", "--cores", "2", "results/tiny/table3.csv")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Nothing to be done" not in out.stdout + out.stderr
    assert "rule train:" in out.stdout and "rule table:" in out.stdout


def test_dvc_stages_find_snakemake_without_an_activated_environment(tmp_path):
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert all((s.get("do") or s)["cmd"].startswith("sh workflow/scripts/snakemake.sh ") for s in stages.values())
    scripts = tmp_path / "repo/workflow/scripts"
    scripts.mkdir(parents=True)
    shutil.copy(ROOT / "workflow/scripts/snakemake.sh", scripts)
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(["sh", "workflow/scripts/snakemake.sh", "--version"], cwd=tmp_path / "repo",
                         capture_output=True, text=True, env=env)
    assert out.returncode == 127 and "snakemake not found" in out.stderr and "scripts/setup.sh" in out.stderr
    fake = tmp_path / "repo/.venv/bin/snakemake"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho fake snakemake \"$@\"\n")
    fake.chmod(0o755)
    out = subprocess.run(["sh", "workflow/scripts/snakemake.sh", "--version"], cwd=tmp_path / "repo",
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "fake snakemake --version"
