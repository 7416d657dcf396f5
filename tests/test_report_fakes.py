"""Hand-made finished runs for the report tests (no tests here; imported by tests/test_report_*.py).

Every number below is chosen by hand so that the tests can state the expected table cells
directly. Compute is in units of PF = 1e12 FLOPs (= 0.001 PFLOPs).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mat import profiles

PF = 1e12
METHODS = ("vanilla", "rand", "multirate", "mat")

PROFILE_YAML = """\
profile: {name}
description: report tests
seeds: [0, 1]
datasets:
  tiny-text: {{name: tiny-text}}
  tiny-images: {{name: tiny-images}}
experiments:
{experiments}
"""
EXPERIMENTS = {
    "table1": """\
  table1:
    description: fake BERT runs
    run: {data: {dataset: tiny-text}, model: {arch: bert}}
    methods: {vanilla: {name: vanilla}, rand: {name: rand}, multirate: {name: multirate}, mat: {name: mat}}
    report: {budget_fractions: [0.5, 0.7, 0.9]}
""",
    "table2": """\
  table2:
    description: fake Switch runs
    run: {data: {dataset: tiny-text}, model: {arch: switch}}
    methods: {vanilla: {name: vanilla}, rand: {name: rand}, multirate: {name: multirate}, mat: {name: mat}}
    report: {budgets_pflops: [0.015, 0.025, 0.035]}
""",
    "table3": """\
  table3:
    description: fake VGG runs
    run: {data: {dataset: tiny-images}, model: {arch: vgg16}}
    methods: {vanilla: {name: vanilla}, rand: {name: rand}, multirate: {name: multirate}, mat: {name: mat}}
    report: {train_accuracy_targets: [0.9, 0.99]}
""",
}

# (flops in PF, validation loss, test loss) per evaluation
LM_RUNS = {
    # test loss is lowest at the last evaluation, but the best VALIDATION loss is at the third
    ("vanilla", 0): ([10, 20, 30, 40], [5.0, 4.0, 3.0, 3.5], [5.1, 4.1, 3.2, 3.1]),
    ("vanilla", 1): ([12, 24, 36, 48], [5.2, 4.2, 3.4, 3.1], [5.3, 4.3, 3.5, 3.0]),
    ("rand", 0): ([10, 20, 30, 40], [5.5, 4.5, 3.8, 3.6], [5.6, 4.6, 3.9, 3.7]),
    ("rand", 1): ([10, 20, 30, 40], [5.7, 4.7, 3.9, 3.7], [5.8, 4.8, 4.0, 3.8]),
    ("multirate", 0): ([10, 20, 30, 40], [4.8, 3.9, 3.5, 3.6], [4.9, 4.0, 3.6, 3.7]),
    ("multirate", 1): ([10, 20, 30, 40], [4.6, 3.7, 3.4, 3.5], [4.7, 3.8, 3.5, 3.6]),
    ("mat", 0): ([8, 16, 24], [4.0, 3.0, 2.9], [4.1, 3.1, 2.8]),  # ended early (Algorithm 1 line 2)
    ("mat", 1): ([8, 16, 24, 32, 40], [4.2, 3.2, 3.0, 2.95, 2.97], [4.3, 3.3, 3.1, 2.9, 2.95]),
}

# train: (flops in PF, accuracy); test: (flops in PF, accuracy)
VISION_RUNS = {
    ("vanilla", 0): ([5, 10, 15, 20], [0.5, 0.85, 0.92, 0.95], [10, 20], [0.80, 0.88]),
    ("vanilla", 1): ([5, 10, 15, 20], [0.6, 0.91, 0.93, 0.96], [10, 20], [0.82, 0.86]),
    ("rand", 0): ([5, 10, 15, 20], [0.4, 0.7, 0.88, 0.91], [10, 20], [0.70, 0.85]),
    ("rand", 1): ([5, 10, 15, 20], [0.4, 0.7, 0.90, 0.93], [10, 20], [0.72, 0.84]),
    ("multirate", 0): ([5, 10, 15, 20], [0.6, 0.9, 0.97, 0.99], [10, 20], [0.85, 0.90]),
    ("multirate", 1): ([5, 10, 15, 20], [0.6, 0.89, 0.96, 0.985], [10, 20], [0.86, 0.89]),
    ("mat", 0): ([4, 8, 12], [0.7, 0.95, 0.995], [8, 12], [0.90, 0.89]),
    ("mat", 1): ([4, 8, 12], [0.8, 0.93, 0.98], [8, 12], [0.87, 0.91]),
}

COLUMNS = ("step", "epoch", "split", "loss", "accuracy", "flops_fwd", "flops_bwd", "flops_mntk", "flops_total",
           "flops_total_noemb", "flops_paper_estimate", "flops_paper_dense", "wall_seconds")


def write_profile(profile_dir: Path, name: str = "fake", experiments=("table1", "table2", "table3")) -> dict:
    profile_dir.mkdir(parents=True, exist_ok=True)
    text = PROFILE_YAML.format(name=name, experiments="".join(EXPERIMENTS[e] for e in experiments))
    (profile_dir / f"{name}.yaml").write_text(text)
    return profiles.load_profile(name, profile_dir)


def _row(step: int, split: str, loss: float, accuracy: float, flops_pf: float) -> dict:
    f = flops_pf * PF
    # the paper's estimator differs from the measured count (here: 0.9 x), so the tests can tell them apart
    return {"step": step, "epoch": step // 100, "split": split, "loss": loss, "accuracy": accuracy,
            "flops_fwd": f / 3, "flops_bwd": 2 * f / 3, "flops_mntk": 0, "flops_total": 1.1 * f,
            "flops_total_noemb": f, "flops_paper_estimate": 0.9 * f, "flops_paper_dense": f, "wall_seconds": step * 0.01}


def lm_rows(flops, valid, test) -> list[dict]:
    rows = []
    for i, (f, v, t) in enumerate(zip(flops, valid, test)):
        step = 10 * (i + 1)
        rows.append(_row(step, "train", v + 0.2, 0.3, f))
        rows.append(_row(step, "valid", v, 0.3, f))
        rows.append(_row(step, "test", t, 0.3, f))
    return rows


def vision_rows(train_f, train_acc, test_f, test_acc) -> list[dict]:
    """One train row per epoch (its mean accuracy), at the epoch's end; test rows at some of them."""
    rows = [{**_row(int(f), "train", 1 - a, a, f), "epoch": i} for i, (f, a) in enumerate(zip(train_f, train_acc))]
    epoch_of = {r["step"]: r["epoch"] for r in rows}
    rows += [{**_row(int(f), "test", 1 - a, a, f), "epoch": epoch_of.get(int(f), 0)} for f, a in zip(test_f, test_acc)]
    return sorted(rows, key=lambda r: (r["step"], r["split"] != "train"))


def write_run(root: Path, profile: dict, experiment: str, method: str, seed: int, rows: list[dict]) -> Path:
    d = root / profiles.Run(profile["profile"], experiment, method, seed).dir
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    (d / "summary.json").write_text(json.dumps({"seed": seed}))
    return d


def write_all_runs(root: Path, profile: dict) -> None:
    """The hand-made runs of every experiment the profile has (table2 reuses table1's numbers)."""
    for exp in profile["experiments"]:
        for (method, seed), spec in (VISION_RUNS if exp == "table3" else LM_RUNS).items():
            rows = vision_rows(*spec) if exp == "table3" else lm_rows(*spec)
            write_run(root, profile, exp, method, seed, rows)
