"""Smoke runs (mat.smoke, `python -m mat smoke`): a reduced profile runs end to end through the real
trainer (mNTK, evaluation, checkpoint + resume) and its CSV is complete; a run that raises an
out-of-memory error or is killed does not stop the others; the projection's arithmetic."""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from mat import profiles
from mat.smoke import plan, report, runner

PROFILE = textwrap.dedent("""\
    profile: smoketest
    description: micro models for the smoke tests
    seeds: [0, 1]
    datasets:
      tiny-text: {name: tiny-text, options: {seed: 0, size: "4000,1500"}}
      tiny-images: {name: tiny-images, options: {seed: 0, size: "160,64"}}
    defaults:
      device: cpu
      ntk: {samples: 8, chunk_size: 4, top_k: 4, log_every: null, log_kinds: [], effective_rank: true}
    experiments:
      lm:
        description: micro BERT
        run:
          data: {dataset: tiny-text, vocab_size: 300, seq_len: 16, mask_prob: 0.15}
          model: {arch: bert, layers: 1, hidden: 16, heads: 2, intermediate: 32, max_len: 16}
          partition: [head]
          optim: {name: adamw, lr: 1.0e-3, schedule: linear, warmup_steps: 50}
          train: {batch_size: 8, epochs: 30, eval_every: 20, eval_batch_size: 16, log_every: 5, checkpoint_every: 50}
          ntk: {log_every: 2, log_kinds: [layer]}
        methods:
          vanilla: {name: vanilla}
          rand: {name: rand}
          multirate: {name: multirate, k: 5}
          mat: {name: mat, alpha: 0.1, beta: 1.0e-3, start_epoch: 4, interval: 8}
          mat_prune: {name: mat_prune, alpha: 0.2, beta: 1.0e-3, start_epoch: 4, interval: 8, prune_ratio: 0.5, prune_epoch: 14}
          snip50: {name: snip, prune_ratio: 0.5}
      img:
        description: micro VGG16
        run:
          data: {dataset: tiny-images, augment: true}
          model: {arch: vgg16, width: 0.0625}
          partition: [filter]
          optim: {name: sgd, lr: 0.05, momentum: 0.9, schedule: step, milestones: [0.5, 0.75], gamma: 0.1}
          train: {batch_size: 32, epochs: 4, eval_every: 5, eval_batch_size: 32, log_every: 5, checkpoint_every: 50}
        methods:
          vanilla: {name: vanilla}
    """)


@pytest.fixture
def profile_dir(tmp_path, monkeypatch):
    """A reduced profile in its own folder; the working directory has no data/, so the data are
    generated into the smoke folder (as in a fresh clone)."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "smoketest.yaml").write_text(PROFILE)
    monkeypatch.chdir(tmp_path)
    return folder


def _profile(profile_dir):
    return profiles.load_profile("smoketest", profile_dir)


def test_smoke_config_forces_the_late_work_into_the_first_steps(profile_dir):
    prof = _profile(profile_dir)
    full = profiles.run_config(prof, "lm", "mat_prune", 0)
    cfg = plan.smoke_overrides(full, 3, 2)
    t = cfg["train"]
    assert (t["max_steps"], t["epochs"], t["eval_every"], t["eval_batches"], t["checkpoint_every"]) == (3, None, 3, 2, 2)
    assert cfg["method"]["start_epoch"] == 0 and cfg["method"]["prune_epoch"] == 0
    assert cfg["optim"]["warmup_steps"] == 2  # 50 would be refused in a 3-step run
    assert cfg["ntk"]["log_every"] == 1
    # the real sizes are untouched
    for key in ("model", "data", "partition"):
        assert cfg[key] == full[key]
    assert cfg["ntk"]["samples"] == full["ntk"]["samples"] and cfg["train"]["batch_size"] == full["train"]["batch_size"]
    with pytest.raises(ValueError, match="at least 2"):
        plan.smoke_overrides(full, 1, 2)


def test_full_schedule_counts_steps_evaluations_and_measurements(profile_dir):
    prof = _profile(profile_dir)
    full = profiles.run_config(prof, "lm", "mat", 0)
    s = plan.full_schedule(full, n_train=100, eval_sizes={"valid": 40, "test": 20})
    # 100 / 8 -> 13 steps per epoch, 30 epochs
    assert (s.steps_per_epoch, s.steps) == (13, 390)
    assert s.evaluations == 390 // 20 + 1  # every 20 steps, and at the end
    assert s.eval_batches == 3 + 2  # ceil(40/16) + ceil(20/16)
    # MAT at epochs 4, 12, 20, 28; logging every 2 epochs: 0, 2, ..., 28 (4..28 even: shared)
    assert s.measurements == len(set(range(0, 30, 2)) | {4, 12, 20, 28})
    assert s.checkpoints == 389 // 50


def test_projection_adds_steps_evaluations_measurements_and_checkpoints(profile_dir):
    prof = _profile(profile_dir)
    runs = plan.plan(prof, Path("smoke"), experiments=["lm"], methods=["mat"])
    (run,) = runs
    assert run.data.startswith("generated")
    result = {"status": "ok", "device": "cpu", "params": 1000, "step_seconds": [9.0, 1.0, 3.0],
              "measurements": [{"key": "mntk|head", "purpose": "method", "seconds": 2.0, "peak_bytes": 2e9}],
              "eval_seconds": 1.0, "eval_batches": 4, "checkpoint_seconds": 0.5, "peak_bytes": 3e9,
              "peak_kind": "RSS", "n_train": 100, "eval_sizes": {"valid": 40, "test": 20}, "wall_seconds": 10.0}
    row = report.row(run, result)
    s = plan.full_schedule(run.full, 100, {"valid": 40, "test": 20})
    step = 2.0  # the median of the steps after the first (1.0, 3.0)
    expected = s.steps * step + s.evaluations * s.eval_batches * 0.25 + s.measurements * 2.0 + s.checkpoints * 0.5
    assert row["step_seconds"] == step
    assert row["projected_hours"] == pytest.approx(expected / 3600, abs=1e-3)
    assert row["mntk"] == "method mntk|head" and row["peak_memory_gb"] == 3.0
    tot = report.totals(prof, runs, [row])
    assert tot[0]["runs"] == 2 and tot[0]["projected_hours"] == pytest.approx(2 * row["projected_hours"])


def test_smoke_of_a_reduced_profile_runs_and_fills_every_column(profile_dir, tmp_path):
    from mat.__main__ import main

    out, table = tmp_path / "smoke", tmp_path / "res" / "smoke.csv"
    code = main(["smoke", "--profile", "smoketest", "--profile-dir", str(profile_dir), "--out", str(out),
                 "--csv", str(table), "--methods", "mat_prune,vanilla", "--experiments", "lm,img"])
    rows = list(csv.DictReader(open(table)))
    assert code == 0, [r["message"] for r in rows]
    assert [(r["experiment"], r["method"]) for r in rows] == [("lm", "vanilla"), ("lm", "mat_prune"), ("img", "vanilla")]
    for r in rows:
        assert r["status"] == "ok", r
        empty = [c for c in report.COLUMNS if c not in ("message", "reduced") and r[c] == ""]
        assert not empty, (r["method"], empty)
        assert float(r["step_seconds"]) > 0 and float(r["peak_memory_gb"]) > 0 and float(r["projected_hours"]) > 0
        assert r["device"] == "cpu" and r["data"].startswith("generated")
    lm_prune = rows[1]
    # MAT-prune's own mNTK (method) and the logged layer mNTK (logging) both ran
    assert "method mntk|head" in lm_prune["mntk"] and "logging mntk|layer" in lm_prune["mntk"]
    assert rows[2]["mntk"] == "none" and float(rows[2]["mntk_seconds"]) == 0
    md = table.with_suffix(".md").read_text()
    assert "| lm | mat_prune | ok |" in md and "| **all** |" in md
    # the worker checkpointed at step 2 and resumed from it (result.json of the run)
    res = json.loads((out / "runs" / "lm" / "mat_prune" / "seed0" / "result.json").read_text())
    assert res["checkpoint_step"] == 2 and len(res["step_seconds"]) == 3
    assert not (out / "runs" / "lm" / "mat_prune" / "seed0" / "run").exists()  # outputs removed without --keep


WRAPPER = textwrap.dedent("""\
    import json, os, signal, sys
    import torch
    from mat.train import loop
    from mat.smoke import worker
    cfg = json.load(open(sys.argv[sys.argv.index("--config") + 1]))
    method = cfg["method"]["name"]
    if method == "rand":
        def boom(self, *a, **k):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (test)")
        loop.Trainer._train_step = boom
    if method == "multirate":
        def die(self, *a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        loop.Trainer._train_step = die
    sys.exit(worker.main(sys.argv[1:]))
    """)


def test_an_out_of_memory_or_a_killed_run_does_not_stop_the_others(profile_dir, tmp_path):
    prof = _profile(profile_dir)
    runs = plan.plan(prof, tmp_path / "smoke", experiments=["lm"], methods=["rand", "multirate", "vanilla"])
    script = tmp_path / "wrapper.py"
    script.write_text(WRAPPER)
    results = runner.run_all(runs, tmp_path / "smoke", command=[sys.executable, str(script)])
    by = {r.method: res for r, res in zip(runs, results)}
    assert by["rand"]["status"] == "out of memory" and "OutOfMemoryError" in by["rand"]["message"]
    assert by["multirate"]["status"] == "out of memory" and "SIGKILL" in by["multirate"]["message"]
    assert by["vanilla"]["status"] == "ok"
    rows = {r.method: report.row(r, res) for r, res in zip(runs, results)}
    assert {m: r["status"] for m, r in rows.items()} == {"rand": "out of memory", "multirate": "out of memory", "vanilla": "ok"}
    assert rows["rand"]["projected_hours"] == "" and rows["vanilla"]["projected_hours"] != ""
    rows = [rows[r.method] for r in runs]
    tot = report.totals(prof, runs, rows)
    assert tot[0]["projected_hours"] is None and tot[0]["failed"] == 2
    assert len(report.problems(rows)) == 2 and not report.problems([r for r in rows if r["status"] == "ok"])


def test_an_exception_in_a_run_is_reported_with_its_message(profile_dir, tmp_path):
    from mat.smoke import worker

    prof = _profile(profile_dir)
    (run,) = plan.plan(prof, tmp_path / "smoke", experiments=["lm"], methods=["vanilla"])
    cfg = dict(run.config)
    cfg["model"] = {**cfg["model"], "heads": 3}  # 16 is not divisible by 3: the model refuses
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    code = worker.main(["--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "o"), "--result", str(tmp_path / "r.json")])
    res = json.loads((tmp_path / "r.json").read_text())
    assert code == 1 and res["status"] == "error" and res["message"]


def _write_table(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=report.COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def test_reduce_records_the_change_and_resume_keeps_matching_rows(profile_dir, tmp_path):
    from mat.__main__ import main

    out, table = tmp_path / "smoke", tmp_path / "res" / "smoke.csv"
    common = ["smoke", "--profile", "smoketest", "--profile-dir", str(profile_dir), "--out", str(out), "--csv", str(table),
              "--methods", "vanilla", "--reduce", "train.eval_batch_size=16"]
    assert main(common + ["--experiments", "img"]) == 0
    (first,) = list(csv.DictReader(open(table)))
    assert first["reduced"] == "train.eval_batch_size 32->16"
    assert "reduced from the profile: train.eval_batch_size 32->16" in table.with_suffix(".md").read_text()
    # --resume, in parts: only lm is asked for and runs; the img row is kept as measured (not rerun);
    # the table lists both in the profile's order
    assert main(common + ["--experiments", "lm", "--resume"]) == 0
    rows = list(csv.DictReader(open(table)))
    assert [(r["experiment"], r["method"]) for r in rows] == [("lm", "vanilla"), ("img", "vanilla")]
    assert rows[1] == first
    assert "1 of the rows kept" in table.with_suffix(".md").read_text()
    # other reductions are other runs: img runs again; lm's eval batch is 16 in the profile, so its row
    # (nothing reduced) stands for the same run and is kept. A marker in the old img row shows it was
    # replaced by a new measurement (two measured wall times may well be equal).
    rows[1]["wall_seconds"] = "marker"
    _write_table(table, rows)
    assert main(common[:-2] + ["--experiments", "img", "--resume"]) == 0
    lm, again = list(csv.DictReader(open(table)))
    assert lm == rows[0] and lm["reduced"] == ""
    assert again["reduced"] == "" and again["wall_seconds"] not in ("marker", "")
    assert main(common + ["--reduce", "no-equals-sign"]) == 2
    # a failed row stays in the table (and the exit status says so) until its run is asked for again
    rows = list(csv.DictReader(open(table)))
    rows[1].update(status="out of memory", message="killed (test)", projected_hours="", step_seconds="")
    _write_table(table, rows)
    assert main(common[:-2] + ["--experiments", "lm", "--resume"]) == 1  # lm kept; img's failure listed
    listed = list(csv.DictReader(open(table)))
    assert [(r["experiment"], r["status"]) for r in listed] == [("lm", "ok"), ("img", "out of memory")]
    assert listed[0] == rows[0]
    assert main(common[:-2] + ["--experiments", "img", "--resume"]) == 0  # asked for: run again
    assert [r["status"] for r in csv.DictReader(open(table))] == ["ok", "ok"]


def test_a_reduced_batch_size_scales_its_time_in_the_projection(profile_dir):
    prof = _profile(profile_dir)
    result = {"status": "ok", "device": "cpu", "params": 1000, "step_seconds": [9.0, 2.0, 2.0], "measurements": [],
              "eval_seconds": 1.0, "eval_batches": 4, "checkpoint_seconds": 0.0, "peak_bytes": 3e9,
              "peak_kind": "RSS", "n_train": 100, "eval_sizes": {"valid": 40, "test": 20}, "wall_seconds": 10.0}
    hours = {}
    for reduce in ({}, {"train.eval_batch_size": 8}, {"train.batch_size": 4}):
        (run,) = plan.plan(prof, Path("smoke"), experiments=["lm"], methods=["vanilla"], reduce=reduce)
        hours[tuple(reduce)] = report.row(run, result)["projected_hours"] * 3600
    s = plan.full_schedule(run.full, 100, {"valid": 40, "test": 20})
    evals, steps = s.evaluations * s.eval_batches * 0.25, s.steps * 2.0
    assert hours[()] == pytest.approx(steps + evals, rel=1e-3)
    assert hours[("train.eval_batch_size",)] == pytest.approx(steps + 2 * evals, rel=1e-3)  # 16 -> 8: x2
    assert hours[("train.batch_size",)] == pytest.approx(2 * steps + evals, rel=1e-3)  # 8 -> 4: x2


def test_a_reduction_scoped_to_one_experiment_changes_only_its_runs(profile_dir):
    """EXPERIMENT:KEY=VALUE (a model that fits only at a smaller batch) reduces that experiment's runs,
    is recorded on them alone and named with its experiment in the header; an unknown experiment is
    refused before anything runs."""
    prof = _profile(profile_dir)
    runs = plan.plan(prof, Path("smoke"), methods=["vanilla"], data=False,
                     reduce={"ntk.samples": 2, "lm:train.batch_size": 4})
    by = {r.experiment: r for r in runs}
    assert set(by) == {"lm", "img"}
    assert by["lm"].config["train"]["batch_size"] == 4 and "train.batch_size 8->4" in by["lm"].reduced
    assert by["img"].config["train"]["batch_size"] == by["img"].full["train"]["batch_size"]
    assert not any(x.startswith("train.batch_size") for x in by["img"].reduced)
    assert all(r.config["ntk"]["samples"] == 2 for r in runs)
    text = report.reductions(runs)
    assert "train.batch_size 8->4 (lm)" in text and "(img" not in text
    many = [plan.SmokeRun(e, "vanilla", 0, {}, {}, "", None, ["S 64->4"] if e != "d" else []) for e in "abcd"]
    assert report.reductions(many) == "S 64->4 (all but d)"
    assert report.reductions(many[2:]) == "S 64->4 (c)"
    with pytest.raises(ValueError, match="no experiment 'nope'"):
        plan.plan(prof, Path("smoke"), reduce={"nope:train.batch_size": 4}, data=False)


def test_the_first_trainer_is_freed_before_the_resume(profile_dir, tmp_path, monkeypatch):
    """The resume's peak memory is the second trainer's: the first (model, optimizer state) is gone."""
    import weakref

    from mat.smoke import worker
    from mat.train import loop

    prof = _profile(profile_dir)
    (run,) = plan.plan(prof, tmp_path / "smoke", experiments=["lm"], methods=["vanilla"])
    made: list[weakref.ref] = []
    alive_at_second: list[bool] = []

    class Recording(loop.Trainer):
        def __init__(self, *a, **k):
            if made:
                alive_at_second.append(made[0]() is not None)
            super().__init__(*a, **k)
            made.append(weakref.ref(self))

    monkeypatch.setattr(loop, "Trainer", Recording)
    result = worker.smoke_one(run.config, tmp_path / "run")
    assert result["checkpoint_step"] == 2 and len(made) == 2
    assert alive_at_second == [False]
