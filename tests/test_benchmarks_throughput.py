"""benchmarks/throughput.py and benchmarks/gpu_hours.py on tiny models: what their CSVs promise."""

from __future__ import annotations

import copy
import csv
import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY_BERT = [
    "--layers", "1", "--hidden", "32", "--heads", "4", "--intermediate", "64", "--vocab", "100",
    "--seq-len", "16", "--batch", "2", "--repeats", "2", "--warmup", "1", "--threads", "1",
]


def load_script(name: str):
    """A benchmark script as a module, loaded from its file (benchmarks/ is not a package; its
    scripts import only the installed `mat`, never each other)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scripts():
    return load_script("throughput"), load_script("gpu_hours")


def read(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------- throughput
def test_throughput_rows_flops_and_tokens(scripts, tmp_path, one_thread):
    throughput, _ = scripts
    out = tmp_path / "throughput.csv"
    assert throughput.main([*TINY_BERT, "--frozen", "0", "0.5", "--out", str(out)]) == 0
    rows = read(out)
    assert [float(r["frozen_fraction"]) for r in rows] == [0.0, 0.5]
    vanilla, mat = rows
    assert int(mat["heads_frozen"]) == 2 and int(vanilla["heads_frozen"]) == 0  # half of 4 heads, 1 layer
    assert int(mat["flops_total"]) < int(vanilla["flops_total"])
    assert int(mat["flops_fwd"]) == int(vanilla["flops_fwd"])  # freezing changes the backward only
    assert float(mat["flops_saving"]) == pytest.approx(1 - int(mat["flops_total"]) / int(vanilla["flops_total"]), abs=1e-6)
    for r in rows:
        t = float(r["step_seconds"])
        assert float(r["tokens_per_s"]) == pytest.approx(2 * 16 / t, rel=1e-4)
        assert float(r["achieved_tflops"]) == pytest.approx(int(r["flops_total"]) / t / 1e12, rel=1e-4)
        assert r["mfu"] == "" and r["peak_tflops"] == ""  # CPU, no peak given
        assert r["device"] == "cpu" and "CPU" in r["hardware"] and r["torch"] == torch.__version__
        assert r["threads"] == "1" and "not a GPU number" in r["note"]
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed, not left behind


def test_throughput_mfu_with_a_given_peak(scripts, tmp_path, one_thread):
    throughput, _ = scripts
    out = tmp_path / "t.csv"
    argv = [*TINY_BERT, "--frozen", "0", "--peak-tflops", "0.5", "--optimizer", "mat", "--out", str(out)]
    assert throughput.main(argv) == 0
    (row,) = read(out)
    assert float(row["peak_tflops"]) == 0.5 and row["peak_source"] == "--peak-tflops"
    assert float(row["mfu"]) == pytest.approx(float(row["achieved_tflops"]) / 0.5, rel=1e-4)
    assert row["optimizer"] == "mat AdamW"


@pytest.mark.parametrize("precision", ["bf16", "tf32"])
def test_throughput_refuses_cuda_precisions_on_cpu(scripts, tmp_path, precision):
    throughput, _ = scripts
    with pytest.raises(SystemExit, match=f"--precision {precision} is offered on CUDA only"):
        throughput.main([*TINY_BERT, "--precision", precision, "--out", str(tmp_path / "x.csv")])
    assert not (tmp_path / "x.csv").exists()


def test_peak_table_and_cpu():
    from mat.bench.peaks import PEAK_TFLOPS, peak_tflops

    assert peak_tflops(torch.device("cpu"), "fp32", None)[0] is None
    assert peak_tflops(torch.device("cpu"), "fp32", 2.0) == (2.0, "--peak-tflops")
    assert PEAK_TFLOPS["H200"] == {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0}
    assert PEAK_TFLOPS["A100"]["bf16"] == 312.0


def test_meta_count_equals_counting_the_real_model(scripts, one_thread):
    """The FLOPs in the CSV come from a shape-only copy; they equal count_step on the real model."""
    throughput, _ = scripts
    from mat.backward import install_partial_backward
    from mat.flops import count_step
    from mat.bench.variants import frozen_mask
    from mat.models import build_model, build_partition

    args = throughput.parse_args([*TINY_BERT, "--out", "unused.csv"])
    cfg = throughput.model_config(args)
    model = build_model(cfg)
    part = build_partition(model, ["head"])
    pb = install_partial_backward(model, part)
    masks = {f: frozen_mask(part, f, 0) for f in (0.0, 0.5)}
    meta = throughput.measured_flops(cfg, masks, (2, 16))
    x = torch.randint(0, 100, (2, 16))
    for f, mask in masks.items():
        pb.set_active(mask)
        assert meta[f] == count_step(model, x)


# ---------------------------------------------------------------------------------- gpu_hours
def resolved_run(profile, experiment, method, data_dir):
    from mat.profiles import run_config
    from mat.train.run_config import load_run_config

    cfg = run_config(profile, experiment, method, 0)
    cfg["data"]["dir"] = str(data_dir)
    return load_run_config(cfg)


@pytest.mark.parametrize("experiment", ["table1", "table3"])
def test_gpu_hours_steps_equal_the_trainers(scripts, tmp_path, tiny_text_dir, tiny_images_dir, experiment, one_thread):
    _, gpu_hours = scripts
    from mat.profiles import load_profile
    from mat.train import RunPlan
    from mat.train.loop import Trainer

    profile = load_profile("tiny", ROOT / "config" / "profiles")
    data_dir = tiny_text_dir if experiment == "table1" else tiny_images_dir
    cfg = resolved_run(profile, experiment, "mat", data_dir)
    n_train, _, source, exact = gpu_hours.Datasets(profile, ROOT, tmp_path).describe(cfg)
    assert source.startswith("counted from") and exact
    plan = RunPlan.from_config(cfg["train"], n_train)
    trainer = Trainer(copy.deepcopy(cfg), tmp_path / "run")
    assert plan == trainer.plan  # the benchmarks' plan is the trainer's own
    assert (plan.steps_per_epoch, plan.total_steps) == (trainer.steps_per_epoch, trainer.total_steps)
    assert cfg["train"]["max_steps"] is None and plan.total_steps == cfg["train"]["epochs"] * plan.steps_per_epoch
    forecast = gpu_hours.plan(cfg, gpu_hours.Datasets(profile, ROOT, tmp_path), gpu_hours.StepFlops())
    assert (forecast["steps_per_epoch"], forecast["steps_per_run"]) == (plan.steps_per_epoch, plan.total_steps)


def test_gpu_hours_flops_equal_a_real_runs_metrics(scripts, tmp_path, run_config, one_thread):
    """A real (micro) epoch-based run: its steps and its logged forward + backward FLOPs, short last
    batch of every epoch included, are what gpu_hours plans for it."""
    _, gpu_hours = scripts
    from mat.train import Trainer, load_run_config

    cfg = load_run_config(run_config("bert", train={"max_steps": None, "epochs": 2}))
    planned = gpu_hours.plan(cfg, gpu_hours.Datasets({"datasets": {}}, ROOT, tmp_path), gpu_hours.StepFlops())
    assert planned["last_batch"] != ""  # the data does not fill the last batch: the case worth checking
    Trainer(copy.deepcopy(cfg), tmp_path / "run").run()
    last = read(tmp_path / "run" / "metrics.csv")[-1]
    assert int(last["step"]) == planned["steps_per_run"]
    assert int(last["flops_fwd"]) + int(last["flops_bwd"]) == planned["flops_per_run"]


def test_gpu_hours_documented_sizes_without_data(scripts, tmp_path):
    _, gpu_hours = scripts
    from mat.profiles import load_profile

    profile = load_profile("small", ROOT / "config" / "profiles")
    ds = gpu_hours.Datasets(profile, tmp_path, tmp_path)  # no data under tmp_path: nothing is downloaded
    cifar = resolved_run(profile, "table3", "vanilla", tmp_path / "none")
    assert ds.describe(cifar)[0] == 50_000
    text = resolved_run(profile, "table1", "vanilla", tmp_path / "none")
    n, _, source, exact = ds.describe(text)
    assert n == 2_088_628 // 127 and source.startswith("lower bound") and not exact
    from mat.train import RunPlan

    plan = RunPlan.from_config({"batch_size": 8, "max_steps": 12000, "epochs": None}, None)
    assert (plan.steps_per_epoch, plan.total_steps) == (None, 12000)
    with pytest.raises(ValueError, match="needs n_train"):
        RunPlan.from_config({"batch_size": 8, "max_steps": None, "epochs": 2}, None)


def test_gpu_hours_hours_are_flops_over_throughput(scripts, tmp_path, one_thread):
    _, gpu_hours = scripts
    measured = tmp_path / "throughput.csv"
    base = {"device": "cpu", "hardware": "test CPU", "threads": 1, "torch": "x", "seq_len": 16, "batch": 2,
            "precision": "fp32"}
    with measured.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[*base, "frozen_fraction", "achieved_tflops"])
        w.writeheader()
        w.writerow({**base, "frozen_fraction": "0.0", "achieved_tflops": "0.002"})
        w.writerow({**base, "frozen_fraction": "0.0", "achieved_tflops": "0.004"})  # the fastest vanilla row
        w.writerow({**base, "frozen_fraction": "0.5", "achieved_tflops": "0.009"})  # not vanilla: ignored
        w.writerow({**base, "device": "cuda", "frozen_fraction": "0.0", "achieved_tflops": "300"})  # other device
    out = tmp_path / "hours.csv"
    argv = ["--profile", "tiny", "--experiments", "table3", "--root", str(tmp_path), "--throughput", str(measured),
            "--out", str(out)]
    assert gpu_hours.main(argv) == 0  # tmp_path holds no data: tiny-images is generated with the profile's options
    rows = read(out)
    assert [r["method"] for r in rows] == ["vanilla", "rand", "multirate", "mat"]
    for r in rows:
        assert r["target"] == "table3" and r["seeds"] == "2" and r["n_train"] == "2000"
        assert int(r["steps_per_run"]) == 12 * 32 and r["last_batch"] == str(2000 - 31 * 64)
        assert int(r["flops_per_run"]) < 12 * 32 * int(r["flops_per_step"])  # 12 short batches
        flops = int(r["flops_per_run"]) * 2
        assert float(r["pflops_all_seeds"]) == pytest.approx(flops / 1e15, rel=1e-5)
        assert float(r["measured_tflops"]) == 0.004
        assert float(r["measured_hours"]) == pytest.approx(flops / 0.004e12 / 3600, rel=1e-5)
        assert float(r["projected_h200_hours"]) == pytest.approx(flops / (0.4 * 989e12) / 3600, rel=1e-5)
    from mat.flops import count_step
    from mat.models import build_model

    torch.manual_seed(0)
    vgg = build_model({"arch": "vgg16", "width": 0.0625})
    c = count_step(vgg, torch.zeros(64, 3, 32, 32))
    assert int(rows[0]["flops_per_step"]) == c["fwd"] + c["bwd"]  # the meta count is the real count
