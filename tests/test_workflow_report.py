"""The report's side of the workflow: a table or figure carries a fingerprint of the `report:` keys
it reads (editing one rebuilds exactly the targets that read it, and no run), every file a run
publishes is a declared output (model.pt), Table 6 reads its own measurement rule's outputs, and
the committed dvc.yaml is the one generated from the target registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mat import profiles
from mat.report import dvc_yaml
from mat.report.targets import TARGETS
from test_report_fakes import write_all_runs

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _workflow(where: Path) -> Path:
    for name in ("workflow", "config"):
        shutil.copytree(ROOT / name, where / name)
    shutil.copy(ROOT / "environment.yml", where / "environment.yml")
    return where


def _snakemake(where: Path, *args):
    exe = shutil.which("snakemake", path=str(BIN)) or "snakemake"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([exe, *args], cwd=where, capture_output=True, text=True, timeout=600, env=env)


def _edit_profile(where: Path, edit) -> None:
    path = where / "config/profiles/tiny.yaml"
    prof = yaml.safe_load(path.read_text())
    edit(prof)
    path.write_text(yaml.safe_dump(prof, sort_keys=False))


def _jobs(out) -> dict[str, int]:
    """{rule: count} from a dry run's job table."""
    text = out.stdout
    assert "Job stats:" in text, out.stdout + out.stderr
    table = text.split("Job stats:", 1)[1].split("\n\n", 1)[0].splitlines()[3:]
    return {name: int(n) for name, n in (line.split() for line in table if line.strip()) if name != "total"}


def test_editing_a_report_block_rebuilds_exactly_the_targets_that_read_it(tmp_path):
    where = _workflow(tmp_path)
    tiny = profiles.load_profile("tiny", where / "config/profiles")
    fake = {**tiny, "experiments": {e: tiny["experiments"][e] for e in ("table1", "table3")}}
    write_all_runs(where, fake)  # hand-made finished runs of the tiny profile's table1 and table3
    for run in profiles.runs(fake):
        for name in ("mntk.csv", "modules.csv", "model.pt"):
            (where / run.dir / name).touch()
    wanted = ["results/tiny/table1.csv", "results/tiny/table3.csv"]
    out = _snakemake(where, "--cores", "1", "--forcerun", "table", "--", *wanted)  # builds both, records params
    assert out.returncode == 0, out.stdout + out.stderr
    out = _snakemake(where, "-n", "--cores", "1", *wanted)
    assert out.returncode == 0 and "Nothing to be done" in out.stdout + out.stderr, out.stdout + out.stderr

    # a key table1 reads: table1 only, and no training run
    _edit_profile(where, lambda p: p["experiments"]["table1"]["report"].update(budget_fractions=[0.3, 0.5, 0.7]))
    out = _snakemake(where, "-n", "--cores", "1", *wanted)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _jobs(out) == {"table": 1}
    assert "results/tiny/table1.csv" in out.stdout and "results/tiny/table3.md" not in out.stdout
    assert "params have changed since last execution" in out.stdout

    # a key no table reads (Figure 5's, in table1's block) rebuilds neither table
    _edit_profile(where, lambda p: p["experiments"]["table1"]["report"].update(
        budget_fractions=tiny["experiments"]["table1"]["report"]["budget_fractions"], fig5_epochs="all"))
    out = _snakemake(where, "-n", "--cores", "1", *wanted)
    assert out.returncode == 0 and "Nothing to be done" in out.stdout + out.stderr, out.stdout + out.stderr


def test_model_pt_is_a_declared_output_of_the_train_rule(tmp_path):
    out = _snakemake(_workflow(tmp_path), "-n", "--cores", "1", "results/tiny/runs/table1/mat/seed0/model.pt")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rule train:" in out.stdout and "seed0/model.pt" in out.stdout.split("rule train:", 1)[1]


def test_table6_is_a_view_of_the_complexity_rules_declared_outputs(tmp_path):
    out = _snakemake(_workflow(tmp_path), "-n", "-p", "--cores", "2", "results/tiny/table6.csv")
    assert out.returncode == 0, out.stdout + out.stderr
    assert _jobs(out) == {"complexity": 1, "table": 1}
    job = out.stdout.split("rule complexity:", 1)[1].split("\n\n", 1)[0]
    assert "results/tiny/complexity/measurements.csv" in job and "results/tiny/complexity/sweep.json" in job
    assert "mem_mb=4000" in job and "python -m mat complexity --profile tiny" in out.stdout  # its own resources
    table = out.stdout.split("rule table:", 1)[1].split("\n\n", 1)[0]
    assert "input: results/tiny/complexity/measurements.csv, results/tiny/complexity/sweep.json" in table


def test_committed_dvc_yaml_is_the_generated_one():
    assert (ROOT / "dvc.yaml").read_text() == dvc_yaml.generate(), "regenerate: python -m mat dvc-yaml --write"
    stages = yaml.safe_load(dvc_yaml.generate())["stages"]
    named = set(stages) | {f"{k}@{i}" for k, s in stages.items() if "foreach" in s for i in s["foreach"]}
    assert {f"figures@{n}" if f"figures@{n}" in named else n for n in TARGETS} <= named
    assert {"data", "claims", "complexity", "train@table1", "train_appendix@table5"} <= named
    assert stages["table1"]["cmd"] == ("sh workflow/scripts/snakemake.sh results/${profile}/table1.csv "
                                       "results/${profile}/table1.md --cores all --config profile=${profile}")


def test_dvc_yaml_check_fails_on_a_hand_edit(tmp_path):
    path = tmp_path / "dvc.yaml"
    path.write_text(dvc_yaml.generate())
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    check = [sys.executable, "-m", "mat", "dvc-yaml", "--check", "--path", str(path)]
    assert subprocess.run(check, capture_output=True, text=True, env=env).returncode == 0
    path.write_text(path.read_text().replace("  table7:", "  table7_renamed:"))
    out = subprocess.run(check, capture_output=True, text=True, env=env)
    assert out.returncode == 1 and "python -m mat dvc-yaml --write" in out.stderr


def test_editing_the_complexity_block_remeasures(tmp_path):
    where = _workflow(tmp_path)
    micro = {"samples": [2, 4], "hidden": [8, 16], "heads": [1, 2], "base": {"samples": 4, "hidden": 8, "heads": 2},
             "layers": 1, "seq_len": 4, "vocab_size": 16, "repeats": 1, "chunk_size": 2}
    _edit_profile(where, lambda p: p.update(complexity=micro))
    measured = "results/tiny/complexity/measurements.csv"
    out = _snakemake(where, "--cores", "1", measured)
    assert out.returncode == 0, out.stdout + out.stderr
    out = _snakemake(where, "-n", "--cores", "1", measured)
    assert out.returncode == 0 and "Nothing to be done" in out.stdout + out.stderr, out.stdout + out.stderr
    _edit_profile(where, lambda p: p["complexity"].update(repeats=2))
    out = _snakemake(where, "-n", "--cores", "1", "results/tiny/table6.csv")
    assert out.returncode == 0, out.stdout + out.stderr
    assert _jobs(out) == {"complexity": 1, "table": 1} and "params have changed since last execution" in out.stdout
