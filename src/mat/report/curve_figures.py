"""Figure 1b (right) and the curves behind Tables 1-3, as data first, then drawn from that data.

`build` gathers everything a figure shows into one long table (the CSV written beside the PNG and
PDF): per panel and method the mean ± std curve over seeds on a common compute grid (`curves`),
plus the reference lines (budgets, accuracy targets). `draw` reads only that table (and the
panels' axis labels), so the CSV holds exactly the plotted numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from mat.report import lm_table, vision_table
from mat.report.curves import seed_band
from mat.report.figure import Figure, style
from mat.report.labels import method_label, profile_caption
from mat.report.lm_measures import COMPUTE
from mat.report.runs import PFLOP, ReportInputError, RunMetrics

X_LABEL = "Computation (PFLOPs, without embeddings)"
CSV_COLUMNS = ["panel", "kind", "method", "label", "pflops", "mean", "std", "n_seeds"]


@dataclass(frozen=True)
class Panel:
    name: str  # the `panel` value in the CSV
    split: str  # metrics.csv split the curve reads
    value: str  # metrics.csv column
    scale: float  # multiply the value (100: fraction -> %)
    ylabel: str


@dataclass(frozen=True)
class Spec:
    experiment: str
    title: str
    panels: tuple[Panel, ...]
    methods: tuple[str, ...] | None  # None: every method of the experiment
    lines: str  # "budgets" | "targets" | ""


VALID_LOSS = Panel("valid_loss", "valid", "loss", 1.0, "Validation loss (log perplexity)")
SPECS = {
    "fig1b": Spec("table1", "Figure 1b (right): validation loss vs computation, MAT vs vanilla BERT",
                  (VALID_LOSS,), ("vanilla", "mat"), ""),
    "curves_table1": Spec("table1", "Validation loss vs computation behind Table 1", (VALID_LOSS,), None, "budgets"),
    "curves_table2": Spec("table2", "Validation loss vs computation behind Table 2", (VALID_LOSS,), None, "budgets"),
    "curves_table3": Spec("table3", "Train and test accuracy vs computation behind Table 3", (
        Panel("train_accuracy", "train", "accuracy", 100.0, "Train accuracy (%, mean over a logging interval)"),
        Panel("test_accuracy", "test", "accuracy", 100.0, "Test accuracy (top-1, %)"),
    ), None, "targets"),
}




def _load(spec: Spec, profile: dict, root) -> dict[str, list[RunMetrics]]:
    if spec.lines == "targets":
        return vision_table.load_runs(profile, spec.experiment, root)
    return lm_table.load_runs(profile, spec.experiment, root)


def build(name: str, profile: dict, root: str | Path = ".") -> Figure:
    """The figure `name` of SPECS (its experiments checked by the caller, mat.report.targets)."""
    if name not in SPECS:
        raise ReportInputError(f"unknown curve figure {name!r}; expected one of {sorted(SPECS)}")
    spec = SPECS[name]
    runs = _load(spec, profile, root)
    methods = [m for m in runs if spec.methods is None or m in spec.methods]
    missing = [m for m in (spec.methods or ()) if m not in runs]
    if missing:
        raise ReportInputError(f"figure {name!r}: experiment {spec.experiment!r} has no method(s) {missing}")
    frames = []
    for panel in spec.panels:
        for method in methods:
            series = []
            for r in runs[method]:
                rows = r.split(panel.split)
                series.append((rows[COMPUTE].to_numpy(float) / PFLOP, rows[panel.value].to_numpy(float) * panel.scale))
            try:
                band = seed_band(series)
            except ValueError as exc:
                raise ReportInputError(f"figure {name!r}, {method}, {panel.name}: {exc}") from exc
            frames.append(pd.DataFrame({
                "panel": panel.name, "kind": "curve", "method": method,
                "label": method_label(profile, spec.experiment, method),
                "pflops": band["x"], "mean": band["mean"], "std": band["std"], "n_seeds": band["n_seeds"],
            }))
        frames.append(_reference_lines(spec, panel, profile, runs))
    data = pd.concat([f for f in frames if not f.empty], ignore_index=True)[CSV_COLUMNS]
    n = sorted({len(runs[m]) for m in methods})
    subtitle = (f"Mean ± std (band) over {'/'.join(map(str, n))} seed{'s' if n != [1] else ''}; each seed linearly interpolated "
                "onto a common compute grid over the range all seeds cover (the CSV beside holds these numbers).")
    return Figure(name, f"{spec.title}\n{profile_caption(profile)}", subtitle, data, partial(draw, panels=spec.panels))


def _reference_lines(spec: Spec, panel: Panel, profile: dict, runs) -> pd.DataFrame:
    rows = []
    if spec.lines == "budgets":
        buds, _ = lm_table.experiment_budgets(profile, spec.experiment, runs)
        rows = [{"kind": "budget", "label": b.header.removeprefix("@ "), "pflops": b.pflops} for b in buds]
    elif spec.lines == "targets" and panel.split == "train":  # the targets are train accuracies
        targets = vision_table.accuracy_targets(profile, spec.experiment)
        rows = [{"kind": "target", "label": f"{t * 100:g}%", "mean": t * 100} for t in targets]
    out = pd.DataFrame(rows, columns=["kind", "label", "pflops", "mean"])
    out["panel"], out["method"], out["std"], out["n_seeds"] = panel.name, "", math.nan, math.nan
    return out


def draw(fd: Figure, panels: tuple[Panel, ...]):
    """The figure, drawn from `fd.data` alone, one axis per panel (the caller closes it)."""
    plt, sns = style()
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4.2), squeeze=False)
    curves = fd.data[fd.data["kind"] == "curve"]
    methods = list(dict.fromkeys(curves["method"]))
    # One colour per method in every figure, colour-blind safe and far apart for the usual four
    # (vanilla blue, Rand pink, Multirate green, MAT vermillion); other methods take what is left.
    palette = sns.color_palette("colorblind", 10)
    fixed = {"vanilla": 0, "rand": 4, "multirate": 2, "mat": 3}
    spare = iter(i for i in (1, 5, 8, 9, 6, 7) if i not in fixed.values())
    colors = {m: palette[fixed[m] if m in fixed else next(spare, 7)] for m in methods}
    for ax, panel in zip(axes[0], panels):
        here = fd.data[fd.data["panel"] == panel.name]
        for method in methods:
            c = here[(here["kind"] == "curve") & (here["method"] == method)]
            if c.empty:
                continue
            ax.plot(c["pflops"], c["mean"], color=colors[method], label=c["label"].iloc[0], lw=1.6)
            if c["std"].notna().any():
                ax.fill_between(c["pflops"], c["mean"] - c["std"], c["mean"] + c["std"], color=colors[method], alpha=0.2, lw=0)
        for _, b in here[here["kind"] == "budget"].iterrows():
            ax.axvline(b["pflops"], color="0.3", ls=":", lw=1.1)
            ax.annotate(b["label"], (b["pflops"], 0.98), xycoords=("data", "axes fraction"), rotation=90,
                        ha="right", va="top", fontsize=6.5, color="0.3",
                        bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 1}, zorder=1)
        for _, t in here[here["kind"] == "target"].iterrows():
            ax.axhline(t["mean"], color="0.3", ls=":", lw=1.1)
            ax.annotate(f"target {t['label']}", (0.0, t["mean"]), xycoords=("axes fraction", "data"),
                        ha="left", va="bottom", fontsize=6.5, color="0.3")
        ax.set_xlabel(X_LABEL)
        ax.set_ylabel(panel.ylabel)
        ax.legend(frameon=True, fontsize=8)
    fig.suptitle(fd.title, fontsize=11)
    fig.text(0.5, 0.005, fd.subtitle, ha="center", va="bottom", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
