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

ENDED = "†"  # a seed's run ended before the budget (its last evaluation is below it): no value
NO_EVAL = "‡"  # a seed has no evaluation before the budget: no value


def build(name: str, profile: dict, experiment: str, root) -> Table:
    runs = load_runs(profile, experiment, root)
    conv = {m: [lm.convergence(r, "test") for r in rs] for m, rs in runs.items()}
    ours = {m: [lm.convergence(r, "valid") for r in rs] for m, rs in runs.items()}
    buds, vanilla = experiment_budgets(profile, experiment, runs)
    readout = lm.budget_readout(profile, experiment)

    columns = [Column(f"val_loss_at_b{i + 1}", f"Validation loss {b.header}") for i, b in enumerate(buds)]
    columns += [
        Column("test_loss", "Test loss @ convergence"),
        Column("computation_pflops", "Computation (PFLOPs)", digits=4, style="g"),
        Column("computation_paper_estimate_pflops", "Computation, paper's accounting (PFLOPs)", digits=4, style="g"),
        Column("test_loss_at_best_valid", "Test loss @ best validation (ours)"),
        Column("computation_at_best_valid_pflops", "Computation until best validation (ours, PFLOPs)", digits=4, style="g"),
    ]
    shared: dict[str, object] = {"budget_readout": readout}
    for i, b in enumerate(buds):
        shared[f"budget_b{i + 1}_pflops"] = b.pflops
        shared[f"budget_b{i + 1}_fraction"] = math.nan if b.fraction is None else b.fraction

    rows, ended_notes, no_eval_notes = [], [], []
    for method, method_runs in runs.items():
        n = len(method_runs)
        label = method_label(profile, experiment, method)
        cells: dict[str, Cell] = {}
        extra: dict[str, object] = {}
        for i, b in enumerate(buds):
            key = f"val_loss_at_b{i + 1}"
            at = [lm.valid_loss_at_budget(r, b.flops, readout) for r in method_runs]
            ended = [r.seed for r, a in zip(method_runs, at) if a.ended_early]
            no_eval = [r.seed for r, a in zip(method_runs, at) if a.before_first]
            s = summarize(a.loss for a in at)
            mark = (ENDED if ended else "") + (NO_EVAL if no_eval else "")
            suffix = f" ({s.n}/{n} seeds)" if 0 < s.n < n else ""
            missing = "run ended" if ended and not no_eval else "n/a"
            cells[key] = Cell(s, mark=mark, missing=missing, suffix=suffix)
            extra[f"{key}_ended_early"] = len(ended)
            if ended:
                ended_notes.append(f"{label} {b.header}: seeds {ended}")
            if no_eval:
                no_eval_notes.append(f"{label} {b.header}: seeds {no_eval}")
        cs, os_ = conv[method], ours[method]
        cells["test_loss"] = Cell(summarize(c.test_loss for c in cs))
        cells["computation_pflops"] = Cell(summarize(c.flops / PFLOP for c in cs))
        cells["computation_paper_estimate_pflops"] = Cell(summarize(c.flops_paper / PFLOP for c in cs))
        cells["test_loss_at_best_valid"] = Cell(summarize(c.test_loss for c in os_))
        cells["computation_at_best_valid_pflops"] = Cell(summarize(c.flops / PFLOP for c in os_))
        extra["best_test_step_mean"] = summarize(c.step for c in cs).mean
        extra["best_valid_loss_mean"] = summarize(c.valid_loss for c in os_).mean
        extra["best_valid_step_mean"] = summarize(c.step for c in os_).mean
        extra["computation_paper_estimate_at_best_valid_pflops_mean"] = summarize(c.flops_paper / PFLOP for c in os_).mean
        finals = [r.final_flops / PFLOP for r in method_runs]
        extra["final_pflops_mean"] = summarize(finals).mean
        extra["final_pflops_min"] = min(finals)
        rows.append(Row(method, label, n, cells, extra))

    seeds = sorted({r.seed for rs in runs.values() for r in rs})
    how = ("read on the straight line (in cumulative compute) between the two evaluations around the budget"
           if readout == "interpolate" else "the last evaluation whose cumulative compute is within the budget "
           "(`budget_readout: last_before`; early by up to one evaluation interval, by a different amount per method)")
    notes = [
        f"Mean ± sample std (ddof=1) over {len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}); best mean per "
        "column in bold (only rows where every seed has a value compete). Loss: masked-token "
        "cross-entropy (log perplexity).",
        f"Validation loss @ budget: {how}; never extrapolated. "
        "Test loss @ convergence and Computation, as the paper defines them (Table 1/2 caption: \"the FLOPs "
        "model used until achieving best test loss\"): the best test loss over the evaluations, and the cumulative "
        "compute until that evaluation. Ours beside them: the test loss at the evaluation with the best validation "
        "loss, and the compute until it (the test set does not choose the point). Compute is counted without "
        "embedding lookups (`flops_total_noemb`: the forward and the backward that really ran -- frozen "
        "modules compute no weight gradient -- counted with FlopCounterMode, plus MAT's own mNTK "
        "evaluations; mNTKs logged only for the figures are not counted). The paper's accounting beside it "
        "(`flops_paper_estimate`): forward + 2 × (forward minus the forward of the modules not updated in the "
        "step), training steps only, no mNTK overhead -- what freezing would save if a frozen module cost no "
        "backward at all; the measured count differs by what really runs: the input gradients that still flow "
        "through frozen modules to the layers below (more), no input gradient below the first trained layer (less). "
        "1 PFLOPs = 1e15 FLOPs.",
    ]
    if buds[0].fraction is not None:
        notes.append(
            f"Budgets are fractions of the mean vanilla computation ({vanilla / PFLOP:.4g} PFLOPs), "
            "as the paper's fixed budgets are fractions of its vanilla model's computation."
        )
    if ended_notes:
        notes.append(
            f"{ENDED} run ended: some runs spent less than this budget in total (e.g. MAT stops once no module is "
            "left to train, Algorithm 1 line 2), so there is no loss to read there; the mean is over the other "
            "seeds: " + "; ".join(ended_notes) + "."
        )
    if no_eval_notes:
        notes.append(f"{NO_EVAL} No evaluation at or before the budget, left out of the mean: " + "; ".join(no_eval_notes) + ".")
    desc = profile["experiments"][experiment].get("description", experiment)
    title = f"{table_title(name)}: {desc} ({profile_caption(profile)})"
    return Table(name, title, columns, rows, shared, notes)


def load_runs(profile: dict, experiment: str, root) -> dict[str, list[RunMetrics]]:
    return load_experiment(root, profile, experiment, need_splits=("valid", "test"))


def experiment_budgets(profile: dict, experiment: str, runs: dict[str, list[RunMetrics]]):
    """(budgets, mean vanilla computation in FLOPs or None): the table's and the curves' budgets."""
    vanilla = summarize(lm.convergence(r, "test").flops for r in runs["vanilla"]).mean if "vanilla" in runs else None
    return budgets(profile, experiment, vanilla), vanilla
