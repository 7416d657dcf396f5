"""Table 5 (Appendix B.2): MAT and network pruning on BERT.

Per run, from its logs:
- forward sparsity: the share of heads removed from the forward pass (modules.csv `pruned`) in the
  trained model, i.e. at the last logged epoch (the paper's "pruning ratio");
- backward sparsity: MEASURED, the share of head parameters NOT updated, averaged over all training
  steps: 1 - sum_e sum_h w_h steps_active[e, h] / sum_e sum_h w_h steps[e] (modules.csv), with w_h
  the head's parameter count. A pruned head is never updated, so it counts as backward-sparse too
  (the paper: SNIP 50% -> 50%/50%; MAT prunes 50% and freezes about half of the rest -> ~75%);
- test loss at convergence and computation until then (PFLOPs, without embeddings), as Tables 1-2:
  at the best test loss as the paper defines it, and at the best validation loss beside it (ours).

Rows "Vanilla", "SNIP (50%)", "SNIP (75%)", "MAT" (labels from each method's config).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from mat.report import lm_measures as lm
from mat.report.labels import profile_caption, pruning_label, table_title
from mat.report.run_logs import load_runs, read_modules
from mat.report.runs import PFLOP, ReportInputError
from mat.report.stats import summarize
from mat.report.table_model import Cell, Column, Row, Table

# Paper, Table 5 (BERT on WikiText-2): forward %, backward %, test loss, PFLOPs.
PAPER_TABLE5 = {"Vanilla": (0, 0, 4.41, 27.80), "SNIP (50%)": (50, 50, 4.39, 19.02),
                "SNIP (75%)": (75, 75, 4.70, 15.22), "MAT": (50, 75, 4.32, 12.03)}


def _weights(modules: pd.DataFrame, sizes: Mapping[str, float] | None) -> pd.Series:
    if sizes is None:
        return pd.Series(1.0, index=modules.index)
    missing = sorted(set(modules["module"]) - set(sizes))
    if missing:
        raise ReportInputError(f"parameter counts missing for modules {missing[:5]}")
    return modules["module"].map(sizes).astype(float)


def forward_sparsity(modules: pd.DataFrame, sizes: Mapping[str, float] | None = None) -> float:
    """Share of module parameters pruned at the last logged epoch (equal weights without `sizes`)."""
    last = modules[modules["epoch"] == modules["epoch"].max()]
    w = _weights(last, sizes)
    return float((w * last["pruned"]).sum() / w.sum())


def forward_sparsity_over_steps(modules: pd.DataFrame, sizes: Mapping[str, float] | None = None) -> float:
    """Share of module parameters pruned, averaged over training steps (each epoch weighted by its
    steps): how much of the forward pass pruning removed over the whole run, not just at its end."""
    w = _weights(modules, sizes)
    return float((w * modules["pruned"] * modules["steps"]).sum() / (w * modules["steps"]).sum())


def backward_sparsity(modules: pd.DataFrame, sizes: Mapping[str, float] | None = None) -> float:
    """Share of module parameters not updated, averaged over training steps (module docstring)."""
    w = _weights(modules, sizes)
    total = float((w * modules["steps"]).sum())
    if total <= 0:
        raise ReportInputError("modules.csv: no training steps logged (all 'steps' are 0)")
    return 1.0 - float((w * modules["steps_active"]).sum()) / total


def build(name: str, profile: dict, experiment: str, root) -> Table:
    runs = load_runs(root, profile, experiment)
    columns = [
        Column("forward_sparsity_pct", "Forward sparsity (heads pruned, %)", better="", digits=1),
        Column("backward_sparsity_pct", "Backward sparsity (head parameters not updated, %)", better="", digits=1),
        Column("test_loss", "Test loss @ convergence"),
        Column("computation_pflops", "Computation (PFLOPs)", digits=4, style="g"),
        Column("computation_paper_estimate_pflops", "Computation, paper's accounting (PFLOPs)", digits=4, style="g"),
        Column("test_loss_at_best_valid", "Test loss @ best validation (ours)"),
        Column("computation_at_best_valid_pflops", "Computation until best validation (ours, PFLOPs)", digits=4, style="g"),
    ]
    rows = []
    for method, method_runs in runs.items():
        mods = [read_modules(r.dir) for r in method_runs]
        conv = [lm.convergence(r, "test") for r in method_runs]
        ours = [lm.convergence(r, "valid") for r in method_runs]
        cells = {
            "forward_sparsity_pct": Cell(summarize(100 * forward_sparsity(m) for m in mods)),
            "backward_sparsity_pct": Cell(summarize(100 * backward_sparsity(m) for m in mods)),
            "test_loss": Cell(summarize(c.test_loss for c in conv)),
            "computation_pflops": Cell(summarize(c.flops / PFLOP for c in conv)),
            "computation_paper_estimate_pflops": Cell(summarize(c.flops_paper / PFLOP for c in conv)),
            "test_loss_at_best_valid": Cell(summarize(c.test_loss for c in ours)),
            "computation_at_best_valid_pflops": Cell(summarize(c.flops / PFLOP for c in ours)),
        }
        cfg = profile["experiments"][experiment]["methods"][method]
        extra = {
            "prune_ratio": float(cfg.get("prune_ratio", 0.0)) if cfg.get("name") in ("snip", "mat_prune") else 0.0,
            "forward_sparsity_over_steps_pct_mean": summarize(100 * forward_sparsity_over_steps(m) for m in mods).mean,
            "best_test_step_mean": summarize(c.step for c in conv).mean,
            "best_valid_step_mean": summarize(c.step for c in ours).mean,
            "final_pflops_mean": summarize(r.final_flops / PFLOP for r in method_runs).mean,
            "modules": int(np.mean([m["module"].nunique() for m in mods])),
        }
        rows.append(Row(method, pruning_label(profile, experiment, method), len(method_runs), cells, extra))

    seeds = sorted({r.seed for rs in runs.values() for r in rs})
    paper = "; ".join(f"{k} {f}%/{b}%, {t}, {c}" for k, (f, b, t, c) in PAPER_TABLE5.items())
    notes = [
        f"Mean ± sample std (ddof=1) over {len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}); "
        "best mean per loss/compute column in bold.",
        "Forward sparsity: share of heads removed from the forward pass in the trained model (last logged epoch; "
        "the CSV also has the share averaged over training steps, lower for MAT, which prunes at `prune_epoch`). "
        "Backward sparsity is measured: the share of head parameters not updated, averaged over all training steps "
        "(pruned heads included; the heads of one model are equal-sized, so this is also the share of heads).",
        "Test loss @ convergence and Computation, as the paper defines them: the best test loss, and the cumulative "
        "compute until that evaluation; ours beside them: the test loss at the best validation loss and the compute "
        "until it. Compute is without embeddings, the methods' own mNTK/SNIP measurements included, mNTKs logged only for figures excluded (`flops_total_noemb`). "
        "The paper's accounting beside it: forward + 2 × (forward minus the forward of the heads not updated "
        "or pruned in the step), training steps only -- what freezing would save if a frozen head cost no backward. "
        "1 PFLOPs = 1e15 FLOPs.",
        f"Paper (Table 5, BERT on WikiText-2; forward/backward sparsity, test loss, PFLOPs): {paper}.",
    ]
    desc = profile["experiments"][experiment].get("description", experiment)
    title = f"{table_title(name)}: {desc} ({profile_caption(profile)})"
    return Table(name, title, columns, rows, {}, notes)
