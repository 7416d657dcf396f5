"""Tables 1 and 2: validation loss at three compute budgets, test loss at convergence, computation.

One row per method, each cell the mean ± std over the profile's seeds. See `lm_measures` for what is
measured in a run and `budgets` for where the budgets come from.
"""

from __future__ import annotations

import math

from mat.report import lm_measures as lm
from mat.report.budgets import budgets
from mat.report.labels import method_label, profile_caption, table_title
from mat.report.runs import PFLOP, RunMetrics, load_experiment
from mat.report.stats import summarize
from mat.report.table_model import Cell, Column, Row, Table

EARLY = "†"  # a seed ended before the budget; its last evaluation is used
NO_EVAL = "‡"  # a seed has no evaluation within the budget (left out of the mean)


def build(name: str, profile: dict, experiment: str, root) -> Table:
    runs = load_runs(profile, experiment, root)
    conv = {m: [lm.convergence(r) for r in rs] for m, rs in runs.items()}
    buds, vanilla = experiment_budgets(profile, experiment, runs)

    columns = [Column(f"val_loss_at_b{i + 1}", f"Validation loss {b.header}") for i, b in enumerate(buds)]
    columns += [
        Column("test_loss", "Test loss @ convergence"),
        Column("computation_pflops", "Computation (PFLOPs)", digits=4, style="g"),
        Column("computation_paper_estimate_pflops", "Computation, paper's estimator (PFLOPs)", digits=4, style="g"),
    ]
    shared: dict[str, object] = {}
    for i, b in enumerate(buds):
        shared[f"budget_b{i + 1}_pflops"] = b.pflops
        shared[f"budget_b{i + 1}_fraction"] = math.nan if b.fraction is None else b.fraction

    rows, early_notes, no_eval_notes = [], [], []
    for method, method_runs in runs.items():
        n = len(method_runs)
        cells: dict[str, Cell] = {}
        extra: dict[str, object] = {}
        for i, b in enumerate(buds):
            key = f"val_loss_at_b{i + 1}"
            at = [lm.valid_loss_at_budget(r, b.flops) for r in method_runs]
            early = [r.seed for r, a in zip(method_runs, at) if a.ended_early]
            no_eval = [r.seed for r, a in zip(method_runs, at) if math.isnan(a.loss)]
            s = summarize(a.loss for a in at)
            mark = (EARLY if early else "") + (NO_EVAL if no_eval else "")
            suffix = f" ({s.n}/{n} seeds)" if 0 < s.n < n else ""
            cells[key] = Cell(s, mark=mark, suffix=suffix)
            extra[f"{key}_ended_early"] = len(early)
            extra[f"{key}_step_mean"] = summarize(a.step for a in at).mean
            if early:
                early_notes.append(f"{method_label(profile, experiment, method)} {b.header}: seeds {early}")
            if no_eval:
                no_eval_notes.append(f"{method_label(profile, experiment, method)} {b.header}: seeds {no_eval}")
        cs = conv[method]
        cells["test_loss"] = Cell(summarize(c.test_loss for c in cs))
        cells["computation_pflops"] = Cell(summarize(c.flops / PFLOP for c in cs))
        cells["computation_paper_estimate_pflops"] = Cell(summarize(c.flops_paper / PFLOP for c in cs))
        extra["best_valid_loss_mean"] = summarize(c.valid_loss for c in cs).mean
        extra["best_step_mean"] = summarize(c.step for c in cs).mean
        extra["final_pflops_mean"] = summarize(r.final_flops / PFLOP for r in method_runs).mean
        rows.append(Row(method, method_label(profile, experiment, method), n, cells, extra))

    seeds = sorted({r.seed for rs in runs.values() for r in rs})
    notes = [
        f"Mean ± sample std (ddof=1) over {len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}); best mean per "
        "column in bold (only rows where every seed has a value compete). Loss: masked-token "
        "cross-entropy (log perplexity).",
        "Validation loss @ budget: the last evaluation whose cumulative compute is within the budget. "
        "Test loss @ convergence: the test loss at the evaluation with the best validation loss; "
        "Computation: the cumulative compute until that evaluation. Compute is counted without "
        "embedding lookups (`flops_total_noemb`: the forward and the backward that really ran -- frozen "
        "modules compute no weight gradient -- counted with FlopCounterMode, plus MAT's own mNTK "
        "evaluations; mNTKs logged only for the figures are not counted); the paper's estimator (3 × forward of the training steps, no "
        "mNTK overhead) is shown beside it. 1 PFLOPs = 1e15 FLOPs.",
    ]
    if buds[0].fraction is not None:
        notes.append(
            f"Budgets are fractions of the mean vanilla computation ({vanilla / PFLOP:.4g} PFLOPs), "
            "as the paper's fixed budgets are fractions of its vanilla model's computation."
        )
    if early_notes:
        notes.append(
            f"{EARLY} Some runs spent less than this budget in total (e.g. MAT stops once no module is "
            "left to train, Algorithm 1 line 2); their last evaluation is used: " + "; ".join(early_notes) + "."
        )
    if no_eval_notes:
        notes.append(f"{NO_EVAL} No evaluation within the budget, left out of the mean: " + "; ".join(no_eval_notes) + ".")
    desc = profile["experiments"][experiment].get("description", experiment)
    title = f"{table_title(name)}: {desc} ({profile_caption(profile)})"
    return Table(name, title, columns, rows, shared, notes)


def load_runs(profile: dict, experiment: str, root) -> dict[str, list[RunMetrics]]:
    return load_experiment(root, profile, experiment, need_splits=("valid", "test"))


def experiment_budgets(profile: dict, experiment: str, runs: dict[str, list[RunMetrics]]):
    """(budgets, mean vanilla computation in FLOPs or None): the table's and the curves' budgets."""
    vanilla = summarize(lm.convergence(r).flops for r in runs["vanilla"]).mean if "vanilla" in runs else None
    return budgets(profile, experiment, vanilla), vanilla
