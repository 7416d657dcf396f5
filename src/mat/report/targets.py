"""Every paper table and figure, one entry each: what it reads and which builder makes it.

This registry drives everything downstream: `python -m mat table|figure NAME`, the Snakemake rules
(workflow/rules/report.smk: inputs, the fingerprint of the profile keys a target reads) and the
DVC stages (`python -m mat dvc-yaml` writes dvc.yaml from it). A target is built in a profile
when all its experiments are there.

A builder gets the profile as `view(profile, target)` shows it: each experiment's `report:` block
holds only the keys the target declares in `reads` (the other experiments' blocks are empty). So
`reads` cannot go stale: a builder that reads an undeclared key sees its default, and the
fingerprint of exactly those keys decides when Snakemake rebuilds the target.

Adding a table or figure: write its builder (a `Table`, a `figure.Figure`, or any object with a
`render`), then add one `Target` below.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mat.report import (
    complexity_table,
    curve_figures,
    head_training_figure,
    lm_table,
    mat_evaluations,
    mntk_figures,
    overfit_figure,
    pruning_table,
    scaling_table,
    vision_table,
)
from mat.report import render as table_render
from mat.report.figure import render as figure_render
from mat.atomic import write_all_atomic
from mat.report.runs import ReportInputError

FILES = {"table": ("csv", "md"), "figure": ("png", "pdf", "csv")}  # what a target of each kind writes
OUT_DIRS = {"table": "results", "figure": "paper_figures"}


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "table" | "figure"
    experiments: tuple[str, ...]  # whose runs it reads (all of every run's files)
    what: str  # one line: the report's caption starts from it
    build: Callable[["Target", dict, Path], object]  # (target, profile view, root) -> Table | Figure | ...
    reads: tuple[str, ...] = ()  # keys of its experiments' `report:` blocks that it reads
    inputs: tuple[str, ...] = ()  # files other than runs, "{profile}" filled in (Table 6: the measurement)
    render: Callable[[object], dict[str, bytes | str]] | None = None  # None: the kind's default
    group: str = "paper"  # "paper" (Tables 1-3 and their figures) | "appendix": report section, DVC stages
    paper: str = ""  # the HTML report: what the paper shows (its counterpart) ...
    differs: tuple[str, ...] = ()  # ... and how ours differs, one sentence each

    def files(self, result) -> dict[str, bytes | str]:
        """{extension: content} of the built result."""
        if self.render is not None:
            return self.render(result)
        if self.kind == "figure":
            return figure_render(result)
        return {"csv": table_render.to_csv(result), "md": table_render.to_markdown(result)}

    def paths(self, profile_name: str, root: str | Path = ".") -> dict[str, Path]:
        out = Path(root) / OUT_DIRS[self.kind] / profile_name
        return {ext: out / f"{self.name}.{ext}" for ext in FILES[self.kind]}

    def input_files(self, profile_name: str) -> list[str]:
        return [p.format(profile=profile_name) for p in self.inputs]


# ----------------------------------------------------------------------------- builders
BUDGET_KEYS = ("budgets_pflops", "budget_fractions", "budget_readout")
TARGET_KEYS = ("train_accuracy_targets", "train_accuracy_readout")


def experiment_table(t: Target, profile: dict, root) -> object:
    """Tables 1-3: the shape follows the experiment's `report:` block, not the table's name --
    compute budgets make the language-model table, train-accuracy targets the vision table."""
    experiment = t.experiments[0]
    report = profile["experiments"][experiment].get("report") or {}
    if "budgets_pflops" in report or "budget_fractions" in report:
        table = lm_table.build(t.name, profile, experiment, root)
    elif "train_accuracy_targets" in report:
        table = vision_table.build(t.name, profile, experiment, root)
    else:
        raise ReportInputError(
            f"profile {profile['profile']!r}, experiments.{experiment}.report: expected 'budgets_pflops' or "
            f"'budget_fractions' (a language-model table) or 'train_accuracy_targets' (Table 3), got {sorted(report)}"
        )
    return mat_evaluations.annotate(table, profile, [experiment], root)


def _annotated(build: Callable) -> Callable[[Target, dict, Path], object]:
    """A runs table with its MAT rows' evaluation counts (mat_evaluations)."""
    def make(t: Target, profile: dict, root):
        exps = t.experiments[0] if len(t.experiments) == 1 else t.experiments
        return mat_evaluations.annotate(build(t.name, profile, exps, root), profile, list(t.experiments), root)
    return make


def _figure(build: Callable[[dict, Path], object]) -> Callable[[Target, dict, Path], object]:
    return lambda t, profile, root: build(profile, root)


def _curves(t: Target, profile: dict, root):
    return curve_figures.build(t.name, profile, root)


def _scaling_files(table) -> dict[str, str]:
    return {"csv": table_render.to_csv(table), "md": scaling_table.to_markdown(table)}


# ----------------------------------------------------------------------------- the registry
# Sentences several captions share (the HTML report's "how ours differs").
MEASURED = (
    "Computation is measured, not estimated: FlopCounterMode counts the forward, the backward that "
    "really ran (a frozen module computes no weight gradient) and the method's own mNTK or SNIP "
    "measurements, without embedding lookups (``flops_total_noemb``); mNTKs logged only for the "
    "figures are left out. The paper counted the forward with DeepSpeed's profiler and took the "
    "backward as 2x the forward; that estimator is shown beside ours where a table has a "
    "computation column."
)
SEEDS = "Mean ± sample std over seeds; the paper prints one number per cell."
CONVERGENCE = (
    "Test loss and computation are taken at the evaluation with the best validation loss "
    "(the paper: the computation until the best test loss)."
)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("table1", "table", ("table1",), "BERT on WikiText-2: validation loss at 3 budgets, test loss, computation",
               experiment_table, BUDGET_KEYS + TARGET_KEYS,
               paper="Table 1 (Sec. 5.1): BERT-base MLM on WikiText-2; validation loss at 10, 15 "
                     "and 20 PFLOPs, test loss and computation, for BERT, BERT-Rand, Multirate and MAT.",
               differs=(MEASURED, "The budgets are fractions of our vanilla run's computation "
                        "(10, 15, 20 of the paper's 28.7 PFLOPs), not absolute PFLOPs.", CONVERGENCE, SEEDS)),
        Target("table2", "table", ("table2",), "Switch-Transformer on WikiText-103: the same shape as Table 1",
               experiment_table, BUDGET_KEYS + TARGET_KEYS,
               paper="Table 2 (Sec. 5.1): Switch-Transformer MLM on WikiText-103; validation loss "
                     "at 200, 400 and 600 PFLOPs, test loss and computation.",
               differs=(MEASURED, "The budgets are fractions of our vanilla run's computation "
                        "(200, 400, 600 of the paper's 1155.2 PFLOPs), not absolute PFLOPs.", CONVERGENCE, SEEDS)),
        Target("table3", "table", ("table3",), "VGG16 on CIFAR-10: computation to train accuracy 95%/99%, test accuracy",
               experiment_table, BUDGET_KEYS + TARGET_KEYS,
               paper="Table 3 (Sec. 5.1): VGG16 on CIFAR-10; computation until 95% and 99% train "
                     "accuracy, test accuracy and computation.",
               differs=(MEASURED, "The train-accuracy targets are the profile's (see below). As in the paper "
                        "there is no validation split: test accuracy at convergence is the best test "
                        "evaluation (an optimistic estimate).", SEEDS)),
        Target("fig1b", "figure", ("table1",), "Figure 1b: validation loss vs computation, MAT vs vanilla BERT", _curves,
               paper="Figure 1b, right panel (Sec. 1): validation loss vs computation, MAT vs "
                     "vanilla BERT.",
               differs=("Mean ± std over seeds on a common computation grid (no extrapolation), against "
                        "measured computation. The left panel (a diagram of MAT's idea) is not drawn.",)),
        Target("curves_table1", "figure", ("table1",), "validation loss vs PFLOPs behind Table 1, seed bands",
               _curves, BUDGET_KEYS,
               paper="No figure in the paper: the validation-loss curves behind Table 1.",
               differs=("Mean ± std bands over seeds against measured computation; the budgets of "
                        "Table 1 are marked.",)),
        Target("curves_table2", "figure", ("table2",), "validation loss vs PFLOPs behind Table 2, seed bands",
               _curves, BUDGET_KEYS,
               paper="No figure in the paper: the validation-loss curves behind Table 2.",
               differs=("Mean ± std bands over seeds against measured computation; the budgets of "
                        "Table 2 are marked.",)),
        Target("curves_table3", "figure", ("table3",), "train accuracy and test accuracy vs PFLOPs behind Table 3",
               _curves, ("train_accuracy_targets",),
               paper="No figure in the paper: the train- and test-accuracy curves behind "
                     "Table 3.",
               differs=("Mean ± std bands over seeds against measured computation; the profile's "
                        "train-accuracy targets are marked.",)),
        # Appendix B and the analysis figures of Sections 2 and 5.2
        Target("table5", "table", ("table5",), "Table 5: pruning on BERT: forward/backward sparsity, test loss, computation",
               _annotated(pruning_table.build), group="appendix",
               paper="Table 5 (App. B.2): pruning on BERT / WikiText-2; Vanilla, SNIP 50% and "
                     "75%, MAT; forward and backward sparsity, test loss, PFLOPs.",
               differs=("Backward sparsity is measured: the share of head parameters not updated, averaged "
                        "over all training steps; the paper states it.", MEASURED, CONVERGENCE, SEEDS)),
        Target("table6", "table", (), "Table 6: full vs modular NTK cost, measured scaling exponents (no training runs)",
               lambda t, profile, root: complexity_table.build(t.name, profile, root),
               inputs=complexity_table.MEASUREMENTS, render=complexity_table.files, group="appendix",
               paper="Table 6 (App. B.3): the time and memory complexity of the full NTK "
                     "vs MAT's modular NTK, as O(.) statements in n, m, k, L and S.",
               differs=("The paper states exponents; we measure time and peak tensor memory as S, m and L "
                        "grow and fit the exponents, beside the paper's. The numbers time the machine the "
                        "pipeline ran on (no training runs are read, and the table is not committed).",)),
        Target("table7", "table", ("table7_mini", "table7_small", "table7_medium", "table7_base", "table7_large"),
               "Table 7: computation until convergence at five BERT sizes, vanilla vs MAT, mNTK overhead",
               _annotated(scaling_table.build), render=_scaling_files, group="appendix",
               paper="Table 7 (App. B.3): computation until convergence of BERT-Mini, -Small, "
                     "-Medium, -Base and -Large on WikiText-2, vanilla vs MAT.",
               differs=("The five sizes are the profile's: scaled down in the tiny and small profiles.",
                        MEASURED, "MAT's overhead column is its measured mNTK FLOPs until convergence "
                        "(best validation loss).")),
        Target("fig1a", "figure", ("table1",), "Figure 1a: effective rank vs lambda_max per head across epochs",
               _figure(mntk_figures.fig1a), group="appendix",
               paper="Figure 1a (Sec. 1): effective rank vs lambda_max of every attention head "
                     "across epochs, BERT on WikiText-2.",
               differs=("Drawn from the first seed's vanilla Table 1 run (the paper shows one run); a few "
                        "heads are highlighted (largest and smallest mean lambda_max, most varying).",)),
        Target("fig2", "figure", ("table1",), "Figure 2: layer-wise mNTK spectra, lambda_max and condition number",
               _figure(mntk_figures.fig2), group="appendix",
               paper="Figure 2 (Sec. 2.2): layer-wise mNTK of BERT on WikiText-2: (a) the first "
                     "16 eigenvalues at epoch 10, (b) lambda_max over training, (c) the condition number "
                     "over the first 20 epochs.",
               differs=("Drawn from the first seed's vanilla Table 1 run. Panel (a) uses epoch 10 or, in a "
                        "shorter run, the last logged epoch. The mNTK is the sum-of-logits kernel on the "
                        "profile's S samples.",)),
        Target("fig3", "figure", ("overfit",), "Figure 3: train/validation loss and layer lambda_max, overfitting onset",
               _figure(overfit_figure.fig3), group="appendix",
               paper="Figure 3 (Sec. 2.2): the overfitting case, a 4-layer BERT on a 64-token MLM "
                     "task: train and validation loss and each layer's lambda_max.",
               differs=("The profile's ``overfit`` experiment; curves are means over seeds. The onset of "
                        "overfitting is marked by a stated rule: the lowest validation loss, if it is not the "
                        "last evaluation and the training loss still falls after it.",)),
        Target("fig4", "figure", ("spectrum",), "Figure 4: normalised head-wise mNTK eigen-spectrum, information vs nuisance",
               _figure(mntk_figures.fig4), group="appendix",
               paper="Figure 4 (Sec. 2.3): the normalised head-wise mNTK eigen-spectrum, with its "
                     "information and nuisance regions.",
               differs=("The profile's ``spectrum`` experiment, last logged epoch, first seed's vanilla run; "
                        "eigenvalues divided by the largest and split at MAT's threshold (Eq. 4, alpha 0.1).",)),
        Target("fig5", "figure", ("table1",), "Figure 5: histogram of the share of epochs each head was trained by MAT",
               _figure(head_training_figure.fig5), ("fig5_epochs",), group="appendix",
               paper="Figure 5 (Sec. 5.2): histogram of the share of epochs in which each head was "
                     "trained under MAT.",
               differs=("From the Table 1 MAT runs' modules.csv: a head counts as trained in an epoch if it "
                        "was updated in at least one step; seeds are pooled; the paper's three observations "
                        "are recomputed from the data and stated on the figure.",)),
    ]
}


# ----------------------------------------------------------------------------- using the registry
def available(experiments) -> list[Target]:
    """Targets whose experiments all exist in a profile, in registry order."""
    have = set(experiments)
    return [t for t in TARGETS.values() if set(t.experiments) <= have]


def require(name: str, profile: dict, kind: str | None = None) -> Target:
    """The target, or a clear error naming the known ones or the experiments the profile lacks."""
    target = TARGETS.get(name)
    if target is None or (kind and target.kind != kind):
        known = [t.name for t in TARGETS.values() if not kind or t.kind == kind]
        raise ReportInputError(f"unknown {kind or 'table or figure'} {name!r}; expected one of {known}")
    if target not in available(profile["experiments"]):
        raise ReportInputError(
            f"{target.kind} {name!r} needs experiments {list(target.experiments)}, which profile "
            f"{profile['profile']!r} does not have (it has {sorted(profile['experiments'])})"
        )
    return target


def view(profile: dict, target: Target) -> dict:
    """The profile as the target's builder sees it: report blocks cut to the keys it reads."""
    exps = {}
    for name, cfg in profile["experiments"].items():
        report = (cfg.get("report") or {}) if name in target.experiments else {}
        exps[name] = {**cfg, "report": {k: v for k, v in report.items() if k in target.reads}}
    return {**profile, "experiments": exps}


def fingerprint(profile: dict, target: Target) -> str:
    """Hash of the profile keys the target reads beyond its runs: a changed one rebuilds it."""
    seen = {e: view(profile, target)["experiments"][e]["report"] for e in target.experiments}
    return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()[:16]


def build(name: str, profile: dict, root: str | Path = ".", kind: str | None = None):
    """The target's result as data (a Table, a Figure, ...), from the finished runs."""
    target = require(name, profile, kind)
    return target.build(target, view(profile, target), Path(root))


def write(name: str, profile: dict, root: str | Path = ".", kind: str | None = None) -> dict[str, Path]:
    """Build the target and write its files (all or none): tables to results/<profile>/,
    figures to paper_figures/<profile>/."""
    target = require(name, profile, kind)
    files = target.files(build(name, profile, root, kind))
    paths = target.paths(profile["profile"], root)
    write_all_atomic({paths[ext]: files[ext] for ext in FILES[target.kind]})
    return paths
