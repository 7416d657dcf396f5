"""Which experiments each table and figure reads: the one registry the workflow, the DVC stages and
the report commands share. A target is built in a profile when all its experiments are there."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "table" | "figure"
    experiments: tuple[str, ...]
    what: str


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("table1", "table", ("table1",), "BERT on WikiText-2: validation loss at 3 budgets, test loss, computation"),
        Target("table2", "table", ("table2",), "Switch-Transformer on WikiText-103: the same shape as Table 1"),
        Target("table3", "table", ("table3",), "VGG16 on CIFAR-10: computation to train accuracy 95%/99%, test accuracy"),
        Target("fig1b", "figure", ("table1",), "Figure 1b: validation loss vs computation, MAT vs vanilla BERT"),
        Target("curves_table1", "figure", ("table1",), "validation loss vs PFLOPs behind Table 1, seed bands"),
        Target("curves_table2", "figure", ("table2",), "validation loss vs PFLOPs behind Table 2, seed bands"),
        Target("curves_table3", "figure", ("table3",), "train accuracy and test accuracy vs PFLOPs behind Table 3"),
        # Appendix B and the analysis figures of Sections 2 and 5.2
        Target("table5", "table", ("table5",), "Table 5: pruning on BERT: forward/backward sparsity, test loss, computation"),
        Target("table6", "table", (), "Table 6: full vs modular NTK cost, measured scaling exponents (no training runs)"),
        Target("table7", "table", ("table7_mini", "table7_small", "table7_medium", "table7_base", "table7_large"),
               "Table 7: computation until convergence at five BERT sizes, vanilla vs MAT, mNTK overhead"),
        Target("fig1a", "figure", ("table1",), "Figure 1a: effective rank vs lambda_max per head across epochs"),
        Target("fig2", "figure", ("table1",), "Figure 2: layer-wise mNTK spectra, lambda_max and condition number"),
        Target("fig3", "figure", ("overfit",), "Figure 3: train/validation loss and layer lambda_max, overfitting onset"),
        Target("fig4", "figure", ("spectrum",), "Figure 4: normalised head-wise mNTK eigen-spectrum, information vs nuisance"),
        Target("fig5", "figure", ("table1",), "Figure 5: histogram of the share of epochs each head was trained by MAT"),
    ]
}


def available(experiments) -> list[Target]:
    """Targets whose experiments all exist in a profile, in registry order."""
    have = set(experiments)
    return [t for t in TARGETS.values() if set(t.experiments) <= have]


def require(name: str, profile: dict) -> Target:
    """The target, or a clear error when the profile lacks one of its experiments."""
    from mat.report.runs import ReportInputError

    target = TARGETS[name]
    if target not in available(profile["experiments"]):
        raise ReportInputError(
            f"figure {name!r} needs experiments {list(target.experiments)}, which profile "
            f"{profile['profile']!r} does not have (it has {sorted(profile['experiments'])})"
        )
    return target
