"""Hand-made finished runs for the appendix report tests (no tests here; imported by
tests/test_report_appendix*.py). Every number is chosen by hand so a test can state the expected
table cell or figure value directly. Compute is in units of PF = 1e12 FLOPs (0.001 PFLOPs)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mat import profiles

PF = 1e12
SIZES = ("mini", "small", "medium", "base", "large")

PROFILE_YAML = """\
profile: fake
description: appendix report tests
seeds: [0, 1]
datasets:
  tiny-text: {name: tiny-text}
experiments:
  table1:
    run: {data: {dataset: tiny-text}, model: {arch: bert}}
    methods: {vanilla: {name: vanilla}, mat: {name: mat}}
    report: {budget_fractions: [0.5, 0.7, 0.9]}
  table5:
    description: fake pruning runs
    run: {data: {dataset: tiny-text}, model: {arch: bert}}
    methods:
      vanilla: {name: vanilla}
      snip50: {name: snip, prune_ratio: 0.5}
      snip75: {name: snip, prune_ratio: 0.75}
      mat_prune: {name: mat_prune, prune_ratio: 0.5, prune_epoch: 1}
  overfit:
    run: {data: {dataset: tiny-text}, model: {arch: bert}}
    methods: {vanilla: {name: vanilla}}
  spectrum:
    seeds: [0]
    run: {data: {dataset: tiny-text}, model: {arch: bert}}
    methods: {vanilla: {name: vanilla}}
"""
TABLE7_YAML = """\
  table7_{size}:
    seeds: [0]
    run: {{data: {{dataset: tiny-text}}, model: {{arch: bert}}}}
    methods: {{vanilla: {{name: vanilla}}, mat: {{name: mat}}}}
"""
METRICS = ("step", "epoch", "split", "loss", "accuracy", "flops_fwd", "flops_bwd", "flops_mntk", "flops_total",
           "flops_total_noemb", "flops_paper_estimate", "wall_seconds")
MODULES = ("epoch", "module", "kind", "layer", "index", "steps_active", "steps", "pruned")


def write_profile(profile_dir: Path, table7: bool = True) -> dict:
    profile_dir.mkdir(parents=True, exist_ok=True)
    text = PROFILE_YAML + ("".join(TABLE7_YAML.format(size=s) for s in SIZES) if table7 else "")
    (profile_dir / "fake.yaml").write_text(text)
    return profiles.load_profile("fake", profile_dir)


def run_dir(root: Path, experiment: str, method: str, seed: int) -> Path:
    d = root / profiles.Run("fake", experiment, method, seed).dir
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write_csv(path: Path, columns, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns))
        w.writeheader()
        w.writerows(rows)


def metric_row(step, split, loss, flops_pf, mntk_pf=0.0, epoch=0) -> dict:
    f = flops_pf * PF
    return {"step": step, "epoch": epoch, "split": split, "loss": loss, "accuracy": 0.3, "flops_fwd": f / 3,
            "flops_bwd": 2 * f / 3, "flops_mntk": mntk_pf * PF, "flops_total": f, "flops_total_noemb": f,
            "flops_paper_estimate": 0.9 * f, "wall_seconds": 0.01 * step}


def evaluations(flops, valid, test, mntk=None, step_every=10) -> list[dict]:
    """train + valid + test rows per evaluation (train loss = valid + 0.2)."""
    rows = []
    for i, (f, v, t) in enumerate(zip(flops, valid, test)):
        s = step_every * (i + 1)
        m = 0.0 if mntk is None else mntk[i]
        rows += [metric_row(s, "train", v + 0.2, f, m), metric_row(s, "valid", v, f, m), metric_row(s, "test", t, f, m)]
    return rows


def write_run(root, experiment, method, seed, metrics, modules=None, mntk=None, summary=None) -> Path:
    d = run_dir(root, experiment, method, seed)
    _write_csv(d / "metrics.csv", METRICS, metrics)
    if modules is not None:
        _write_csv(d / "modules.csv", MODULES, modules)
    if mntk is not None:
        top_k = max((int(k[4:]) + 1 for r in mntk for k in r if k.startswith("eig_")), default=0)
        cols = ("epoch", "step", "partition", "module", "kind", "layer", "index", "lambda_max", "lambda_min",
                *[f"eig_{i}" for i in range(top_k)], "effective_rank", "threshold", "information", "stopped")
        _write_csv(d / "mntk.csv", cols, mntk)
    (d / "summary.json").write_text(json.dumps({"seed": seed, **(summary or {})}))
    return d


def module_rows(spec: dict[str, list[tuple[int, int, bool]]], layer_of=lambda i: 0) -> list[dict]:
    """{module: [(steps_active, steps, pruned) per epoch]} -> modules.csv rows (heads, in order)."""
    rows = []
    n_epochs = len(next(iter(spec.values())))
    for e in range(n_epochs):
        for i, (name, per_epoch) in enumerate(spec.items()):
            a, s, p = per_epoch[e]
            rows.append({"epoch": e, "module": name, "kind": "head", "layer": layer_of(i), "index": i,
                         "steps_active": a, "steps": s, "pruned": "true" if p else "false"})
    return rows


def mntk_row(epoch, step, partition, module, layer, index, eigs, effective_rank=None, lambda_min=None) -> dict:
    row = {"epoch": epoch, "step": step, "partition": partition, "module": module, "kind": partition,
           "layer": layer, "index": index, "lambda_max": eigs[0],
           "lambda_min": eigs[-1] if lambda_min is None else lambda_min}
    row.update({f"eig_{i}": v for i, v in enumerate(eigs)})
    if effective_rank is not None:
        row["effective_rank"] = effective_rank
    return row
