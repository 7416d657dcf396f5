"""The Snakemake DAG and the DVC stages: every profile's dry run resolves, and bad input fails early."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _snakemake(*args):
    exe = shutil.which("snakemake", path=str(BIN)) or "snakemake"
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("profile", ["tiny", "small", "paper"])
def test_dry_run_plans_every_run_and_table(profile):
    out = _snakemake("-n", "--config", f"profile={profile}", "--forceall")
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout + out.stderr
    for table in ("table1", "table2", "table3"):
        assert f"results/{profile}/{table}.csv" in text
    assert f"results/{profile}/claims.md" in text


def test_unknown_profile_fails_before_any_job():
    out = _snakemake("-n", "--config", "profile=huge")
    assert out.returncode != 0
    assert "unknown profile 'huge'" in out.stdout + out.stderr


def test_lint_is_clean():
    out = _snakemake("--lint")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Lints for" not in out.stdout + out.stderr


def test_dvc_stages_name_every_table():
    exe = shutil.which("dvc", path=str(BIN)) or "dvc"
    out = subprocess.run([exe, "stage", "list"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    names = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    assert {"table1", "table2", "table3", "claims", "train@table1"} <= names


def test_slurm_profile_dry_run_requests_a_gpu_per_training_job():
    out = _snakemake("-n", "--workflow-profile", "workflow/profiles/slurm", "--config", "profile=paper", "--forceall")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rule train:" in out.stdout + out.stderr


def test_dvc_commands_end_with_config_pairs():
    """`--config` takes every following word as a name=value pair, so targets must come before it
    (a target after it made `dvc repro` fail with 'Unparsable value')."""
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        cmd = (stage.get("do") or stage)["cmd"]
        after = cmd.split("--config", 1)[1].split()
        assert after and all("=" in word for word in after), f"stage {name}: words after --config: {after}"


def test_smoke_target_passes_its_options_quoted():
    out = _snakemake("-n", "-p", "--config", "profile=small", "smoke=true", "smoke_options=--samples 8 --reduce train.eval_batch_size=8 --resume",
                     "--forcerun", "smoke")
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert "results/small/smoke.csv" in text and "rule train:" not in text  # the smoke table only
    assert "python -m mat smoke --profile small" in text
    assert "--samples 8 --reduce train.eval_batch_size=8 --resume" in text
