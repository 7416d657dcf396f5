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
    ]
}


def available(experiments) -> list[Target]:
    """Targets whose experiments all exist in a profile, in registry order."""
    have = set(experiments)
    return [t for t in TARGETS.values() if set(t.experiments) <= have]
