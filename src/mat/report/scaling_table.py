"""Table 7 (Appendix B.3): computation until convergence of BERT at five sizes, vanilla vs MAT,
and what MAT's own measurements cost.

Per size (one experiment each, `table7_mini` ... `table7_large`):
- vanilla / MAT computation: cumulative compute (PFLOPs, without embeddings) until the evaluation
  with the best test loss, as the paper defines it for Tables 1-2;
- MAT overhead: the FLOPs of MAT's mNTK evaluations (`flops_mntk`) spent until that evaluation --
  already inside MAT's computation, shown to judge the paper's "the overhead is negligible";
- saving: 1 - MAT / vanilla (means over seeds), in percent;
- beside them (ours): vanilla / MAT computation until the best validation loss, and its saving.

The CSV has one row per size; the Markdown puts sizes in columns, as the paper's Table 7.
"""

from __future__ import annotations

import math

from mat.report import lm_measures as lm
from mat.report.labels import profile_caption, table_title
from mat.report.render import cell_text
from mat.report.run_logs import load_runs
from mat.report.runs import PFLOP, ReportInputError, RunMetrics
from mat.report.stats import Summary, summarize
from mat.report.table_model import Cell, Column, Row, Table

SIZES = ("mini", "small", "medium", "base", "large")
EXPERIMENTS = tuple(f"table7_{s}" for s in SIZES)
OVERHEAD = "flops_mntk"
# Paper, Table 7 (PFLOPs): vanilla and MAT computation per size.
PAPER_TABLE7 = {"mini": (1.44, 1.06), "small": (4.28, 2.85), "medium": (9.52, 5.77), "base": (27.80, 16.50), "large": (61.25, 30.09)}


def size_label(experiment: str) -> str:
    """'table7_mini' -> 'BERT-Mini'."""
    return "BERT-" + experiment.removeprefix("table7_").capitalize()


def mntk_overhead(run: RunMetrics) -> float:
    """FLOPs of the mNTK measurements until the best test loss (`flops_mntk` on that row)."""
    if OVERHEAD not in run.metrics.columns:
        raise ReportInputError(f"{run.dir / 'metrics.csv'}: missing column {OVERHEAD!r}; found {list(run.metrics.columns)}")
    c = lm.convergence(run, "test")
    test = run.split("test")
    value = float(test.loc[test["step"] == c.step, OVERHEAD].iloc[0])
    if math.isnan(value):
        raise ReportInputError(f"{run.dir / 'metrics.csv'}: column {OVERHEAD!r} is empty at step {c.step}; expected a number")
    return value


def _saving(mat: float, vanilla: float) -> float:
    """1 - MAT / vanilla, in percent (NaN without a positive vanilla computation)."""
    return 100.0 * (1.0 - mat / vanilla) if vanilla > 0 else math.nan


def build(name: str, profile: dict, experiments: tuple[str, ...], root) -> Table:
    columns = [
        Column("vanilla_pflops", "Vanilla computation (PFLOPs)", better="", digits=4, style="g"),
        Column("mat_pflops", "MAT computation (PFLOPs)", better="", digits=4, style="g"),
        Column("mat_overhead_pflops", "MAT overhead: mNTK evaluations (PFLOPs)", better="", digits=3, style="g"),
        Column("saving_pct", "Saving (%)", better="", digits=1),
        Column("vanilla_paper_pflops", "Vanilla computation, paper's accounting (PFLOPs)", better="", digits=4, style="g"),
        Column("mat_paper_pflops", "MAT computation, paper's accounting (PFLOPs)", better="", digits=4, style="g"),
        Column("saving_paper_pct", "Saving, paper's accounting (%)", better="", digits=1),
        Column("vanilla_at_best_valid_pflops", "Vanilla computation until best validation (ours, PFLOPs)", better="", digits=4, style="g"),
        Column("mat_at_best_valid_pflops", "MAT computation until best validation (ours, PFLOPs)", better="", digits=4, style="g"),
        Column("saving_at_best_valid_pct", "Saving until best validation (ours, %)", better="", digits=1),
    ]
    rows, problems = [], []
    for exp in experiments:
        runs = load_runs(root, profile, exp)
        missing = [m for m in ("vanilla", "mat") if m not in runs]
        if missing:
            problems.append(f"experiment {exp!r} has no method(s) {missing} (Table 7 compares vanilla and mat)")
            continue
        van = [lm.convergence(r, "test").flops / PFLOP for r in runs["vanilla"]]
        mat = [lm.convergence(r, "test").flops / PFLOP for r in runs["mat"]]
        over = [mntk_overhead(r) / PFLOP for r in runs["mat"]]
        sv, sm = summarize(van), summarize(mat)
        pv = summarize(lm.convergence(r, "test").flops_paper / PFLOP for r in runs["vanilla"])
        pm = summarize(lm.convergence(r, "test").flops_paper / PFLOP for r in runs["mat"])
        ov = summarize(lm.convergence(r, "valid").flops / PFLOP for r in runs["vanilla"])
        om = summarize(lm.convergence(r, "valid").flops / PFLOP for r in runs["mat"])
        cells = {
            "vanilla_pflops": Cell(sv),
            "mat_pflops": Cell(sm),
            "mat_overhead_pflops": Cell(summarize(over)),
            "saving_pct": Cell(Summary(_saving(sm.mean, sv.mean), math.nan, 1)),
            "vanilla_paper_pflops": Cell(pv),
            "mat_paper_pflops": Cell(pm),
            "saving_paper_pct": Cell(Summary(_saving(pm.mean, pv.mean), math.nan, 1)),
            "vanilla_at_best_valid_pflops": Cell(ov),
            "mat_at_best_valid_pflops": Cell(om),
            "saving_at_best_valid_pct": Cell(Summary(_saving(om.mean, ov.mean), math.nan, 1)),
        }
        size = exp.removeprefix("table7_")
        paper = PAPER_TABLE7.get(size, (math.nan, math.nan))
        extra = {
            "experiment": exp,
            "overhead_pct_of_mat": 100.0 * summarize(over).mean / sm.mean if sm.mean > 0 else math.nan,
            "vanilla_n_seeds": len(van),
            "mat_n_seeds": len(mat),
            "paper_vanilla_pflops": paper[0],
            "paper_mat_pflops": paper[1],
            "paper_saving_pct": 100.0 * (1 - paper[1] / paper[0]) if paper[0] == paper[0] else math.nan,
        }
        n = min(len(van), len(mat))
        rows.append(Row(exp, size_label(exp), n, cells, extra))
    if problems:
        raise ReportInputError("cannot build Table 7:\n  " + "\n  ".join(problems))

    notes = [
        "Computation, as the paper defines it: cumulative compute (PFLOPs, without embeddings; MAT's own mNTK evaluations included, mNTKs logged only for figures excluded) until the "
        "evaluation with the best test loss; mean ± sample std over seeds where a size has more than one. "
        "Paper's accounting: the same point, compute as forward + 2 × (forward minus the forward of the heads not "
        "updated), training steps only (no mNTK). "
        "Ours beside it: the same until the evaluation with the best validation loss (the test set does not choose the point). "
        "MAT overhead: the mNTK evaluations' FLOPs (`flops_mntk`) until that evaluation, part of MAT's computation. "
        "Saving: 1 - MAT / vanilla of the means.",
        "Paper (Table 7, PFLOPs, vanilla / MAT): "
        + "; ".join(f"{size_label('table7_' + s)} {v} / {m} ({100 * (1 - m / v):.1f}% saved)" for s, (v, m) in PAPER_TABLE7.items())
        + ". Our sizes are the profile's, scaled down in the tiny and small profiles.",
    ]
    title = f"{table_title(name)}: computation until convergence of BERT at five sizes, vanilla vs MAT ({profile_caption(profile)})"
    return Table(name, title, columns, rows, {}, notes)


def to_markdown(table: Table) -> str:
    """Sizes as columns, measures as rows (the paper's layout); cells formatted as every table's."""
    headers = [""] + [r.label for r in table.rows]
    lines = [f"### {table.title}", "", "| " + " | ".join(headers) + " |",
             "|" + "|".join([" --- "] + [" ---: "] * (len(headers) - 1)) + "|"]
    for col in table.columns:
        cells = [col.header] + [cell_text(table, r.method, col.key) for r in table.rows]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| Seeds (vanilla / MAT) | " + " | ".join(f"{r.extra['vanilla_n_seeds']} / {r.extra['mat_n_seeds']}" for r in table.rows) + " |")
    for note in table.footnotes:
        lines.extend(["", note])
    return "\n".join(lines) + "\n"
