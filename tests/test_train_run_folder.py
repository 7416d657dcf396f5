"""The run-folder contract (`mat.run_folder`): every file the trainer writes is named by it, every
log has its columns, summary.json its keys, and the readers (report, flops meter) agree with it."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import pytest

from mat import run_folder
from mat.train import load_run_config, train
from test_train_resume import Interrupted, interrupt_at

pytestmark = pytest.mark.usefixtures("one_thread")
SRC = Path(__file__).resolve().parents[1] / "src" / "mat"


def _header(path: Path) -> tuple[str, ...]:
    with path.open(newline="") as fh:
        return tuple(next(csv.reader(fh)))


def _cfg(run_config, **train_keys):
    method = {"name": "mat", "start_epoch": 1, "interval": 1, "alpha": 0.5}
    keys = {"max_steps": 6, "checkpoint_every": 2, "eval_every": 3, "log_every": 2, **train_keys}
    return load_run_config(run_config("bert", method, train=keys, ntk={"log_every": 1, "top_k": 3}))


def test_a_finished_run_holds_exactly_the_contracts_files_and_columns(run_config, tmp_path):
    cfg = _cfg(run_config)
    out = tmp_path / "run"
    summary = train(cfg, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(run_folder.OUTPUTS)  # no .work, no temporary file
    assert run_folder.is_complete(out)
    for name, columns in run_folder.log_columns(cfg["ntk"]["top_k"]).items():
        assert _header(out / name) == columns, name
    keys = list(json.loads((out / run_folder.SUMMARY).read_text()))
    assert keys == [*run_folder.SUMMARY_KEYS, "best_valid", *run_folder.SUMMARY_TAIL]
    assert set(run_folder.PROVENANCE_KEYS) <= set(keys) and summary["git_commit"] != ""
    assert run_folder.read_summary(out) == summary


def test_resume_state_is_named_by_the_contract(run_config, tmp_path, monkeypatch):
    cfg = _cfg(run_config)
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        interrupt_at(m, 5)
        with pytest.raises(Interrupted):
            train(cfg, out)
    assert [p.name for p in out.iterdir()] == [run_folder.WORK]
    work = out / run_folder.WORK
    expected = {*run_folder.LOGS, run_folder.WORK_CONFIG, run_folder.CHECKPOINT, run_folder.CHECKPOINT_PREVIOUS}
    assert {p.name for p in work.iterdir()} == expected
    assert run_folder.work_config_matches(work, cfg) and not run_folder.work_config_matches(work, {**cfg, "seed": 9})


def test_the_readers_agree_with_the_contract():
    from mat import flops
    from mat.report import run_logs, runs

    assert flops.COLUMNS == run_folder.COMPUTE_COLUMNS  # the meter's totals are metrics.csv's compute columns
    assert set(runs.REQUIRED_COLUMNS) <= set(run_folder.METRICS_COLUMNS)
    assert runs.SPLITS == run_folder.SPLITS
    assert set(run_logs.MODULES_COLUMNS) == set(run_folder.MODULES_COLUMNS)
    assert set(run_logs.MNTK_COLUMNS) <= set(run_folder.mntk_columns(1))
    assert set(run_folder.LOGS) | {run_folder.SUMMARY, run_folder.MODEL} == set(run_folder.OUTPUTS)


def test_the_contract_sits_at_the_bottom_of_the_package():
    """run_folder imports nothing from mat but the atomic writer, and that nothing at all, so
    every layer (trainer, report, benchmarks, workflow) may import it."""
    for name, allowed in (("run_folder.py", {"mat.atomic"}), ("atomic.py", set())):
        tree = ast.parse((SRC / name).read_text())
        used = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        used |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert {m for m in used if m == "mat" or m.startswith("mat.")} <= allowed, name


def test_no_trainer_file_names_a_run_file_itself():
    """File names live in the contract: no literal "metrics.csv", "summary.json", ... in train/."""
    literals = set(run_folder.OUTPUTS) | {run_folder.WORK, run_folder.CHECKPOINT, run_folder.CHECKPOINT_PREVIOUS,
                                         run_folder.WORK_CONFIG}
    for path in sorted((SRC / "train").glob("*.py")):
        tree = ast.parse(path.read_text())
        doc = {id(n.body[0].value) for n in ast.walk(tree)
               if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
               and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        found = [n.value for n in ast.walk(tree)
                 if isinstance(n, ast.Constant) and n.value in literals and id(n) not in doc]
        assert not found, f"{path.name}: {found}"
