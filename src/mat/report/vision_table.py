"""Table 3: computation until train accuracy reaches each target, test accuracy at convergence,
computation until then. One row per method, mean ± std over seeds; an unreached target stays
"not reached" (never a guessed number)."""

from __future__ import annotations

from mat.report import vision_measures as vm
from mat.report.labels import method_label, profile_caption, table_title
from mat.report.runs import PFLOP, ReportInputError, RunMetrics, load_experiment
from mat.report.stats import summarize
from mat.report.table_model import Cell, Column, Row, Table


def accuracy_targets(profile: dict, experiment: str) -> list[float]:
    report = profile["experiments"][experiment].get("report") or {}
    where = f"profile {profile['profile']!r}, experiments.{experiment}.report.train_accuracy_targets"
    values = report.get("train_accuracy_targets")
    if not isinstance(values, list) or not values or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in values
    ):
        raise ReportInputError(f"{where}: expected a non-empty list of fractions in (0, 1], got {values!r}")
    return [float(v) for v in values]


def train_readout(profile: dict, experiment: str) -> str:
    """The experiment's `report.train_accuracy_readout` ("epoch", the default, or "log_window")."""
    value = (profile["experiments"][experiment].get("report") or {}).get("train_accuracy_readout", "epoch")
    if value not in vm.TRAIN_READOUTS:
        raise ReportInputError(
            f"profile {profile['profile']!r}, experiments.{experiment}.report.train_accuracy_readout: {value!r}; "
            f"expected one of {list(vm.TRAIN_READOUTS)}"
        )
    return value


def target_key(target: float) -> str:
    """0.95 -> 'pflops_to_train_acc_95' (0.995 -> '..._99p5')."""
    return "pflops_to_train_acc_" + f"{round(target * 100, 6):g}".replace(".", "p")


def load_runs(profile: dict, experiment: str, root) -> dict[str, list[RunMetrics]]:
    return load_experiment(root, profile, experiment, need_splits=("train", "test"), need_accuracy=True)


def build(name: str, profile: dict, experiment: str, root) -> Table:
    targets = accuracy_targets(profile, experiment)
    runs = load_runs(profile, experiment, root)
    readout = train_readout(profile, experiment)
    columns = [
        Column(target_key(t), f"Computation until train acc {'=' if readout == 'epoch' else '≥'} {t * 100:g}% (PFLOPs)", digits=4, style="g")
        for t in targets
    ]
    columns += [
        Column("test_acc_pct", "Test accuracy (top-1, %) @ convergence", better="higher", digits=2),
        Column("computation_pflops", "Computation (PFLOPs)", digits=4, style="g"),
        Column("computation_paper_estimate_pflops", "Computation, paper's accounting (PFLOPs)", digits=4, style="g"),
    ]
    shared: dict[str, object] = {"train_accuracy_readout": readout}
    shared |= {f"target_{target_key(t).removeprefix('pflops_to_train_acc_')}": t for t in targets}
    rows = []
    for method, method_runs in runs.items():
        n = len(method_runs)
        cells: dict[str, Cell] = {}
        for t in targets:
            reached = [vm.flops_to_train_accuracy(r, t, readout) for r in method_runs]
            s = summarize(None if f is None else f / PFLOP for f in reached)
            suffix = f" ({s.n}/{n} seeds reached)" if 0 < s.n < n else ""
            cells[target_key(t)] = Cell(s, missing="not reached", suffix=suffix)
        best = [vm.best_test(r) for r in method_runs]
        cells["test_acc_pct"] = Cell(summarize(100 * b.accuracy for b in best))
        cells["computation_pflops"] = Cell(summarize(b.flops / PFLOP for b in best))
        cells["computation_paper_estimate_pflops"] = Cell(summarize(b.flops_paper / PFLOP for b in best))
        finals = [r.final_flops / PFLOP for r in method_runs]
        extra = {"best_step_mean": summarize(b.step for b in best).mean,
                 "final_pflops_mean": summarize(finals).mean, "final_pflops_min": min(finals)}
        rows.append(Row(method, method_label(profile, experiment, method), n, cells, extra))

    seeds = sorted({r.seed for rs in runs.values() for r in rs})
    notes = [
        f"Mean ± sample std (ddof=1) over {len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}); best mean per "
        "column in bold (only rows where every seed has a value compete).",
        ("Computation until train acc = n: the training accuracy of each epoch (the mean over its steps) "
         "placed at the cumulative compute at the epoch's end; the compute where it first reaches n, read on "
         "the straight line between the last epoch below n and the first at or above it (the first epoch's "
         "end when that epoch already reaches n); never extrapolated. "
         if readout == "epoch" else
         "Computation until train acc ≥ n: cumulative compute at the first logged train window (`log_every` "
         "steps) whose mean accuracy reaches n (`train_accuracy_readout: log_window`). ")
        + "\"not reached\" if no epoch does, and \"(k/n seeds reached)\" when only some seeds do (the mean "
        "is then over those seeds only).",
        "Test accuracy @ convergence: the best test evaluation. As in the paper there is no validation "
        "split, so this point is chosen on the test set itself (an optimistic estimate). Computation: "
        "the cumulative compute until that evaluation, without embeddings (`flops_total_noemb`; VGG has "
        "none), the paper's accounting beside it (forward + 2 × (forward minus the forward of the filters not "
        "updated in the step), training steps only, no mNTK overhead). 1 PFLOPs = 1e15 FLOPs.",
    ]
    desc = profile["experiments"][experiment].get("description", experiment)
    title = f"{table_title(name)}: {desc} ({profile_caption(profile)})"
    return Table(name, title, columns, rows, shared, notes)
