"""The analysis figures (Figures 1a, 2, 3, 4, 5): data first, drawn from that data, written together.

Each builder returns an `AnalysisFigure`: the long table written as the CSV beside the PNG and PDF
(exactly the plotted numbers) and a `draw` function that reads only that table. Builders:
`mntk_figures` (1a, 2, 4: mNTK spectra and effective rank), `overfit_figure` (3),
`head_training_figure` (5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from mat.report.io import write_all_atomic
from mat.report.runs import ReportInputError
from mat.report.targets import require


@dataclass(frozen=True)
class AnalysisFigure:
    name: str
    title: str  # names the profile (labels.profile_caption)
    subtitle: str  # how the numbers were obtained
    data: pd.DataFrame  # written as <name>.csv
    draw: Callable[["AnalysisFigure"], object]  # -> matplotlib Figure, from `data` alone
    facts: dict = field(default_factory=dict)  # numbers the figure states in text (tests read them)


def _builders() -> dict[str, Callable[[dict, str | Path], AnalysisFigure]]:
    from mat.report import head_training_figure, mntk_figures, overfit_figure

    return {
        "fig1a": mntk_figures.fig1a,
        "fig2": mntk_figures.fig2,
        "fig3": overfit_figure.fig3,
        "fig4": mntk_figures.fig4,
        "fig5": head_training_figure.fig5,
    }


NAMES = ("fig1a", "fig2", "fig3", "fig4", "fig5")


def style():
    """(pyplot, seaborn) with the files-only backend and the report's theme."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def finish(fig, af: AnalysisFigure) -> None:
    """Title (naming the profile) on top, how-it-was-measured line at the bottom."""
    fig.suptitle(af.title, fontsize=10.5)
    fig.text(0.5, 0.005, af.subtitle, ha="center", va="bottom", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.08, 1, 1))


def build(name: str, profile: dict, root: str | Path = ".") -> AnalysisFigure:
    if name not in NAMES:
        raise ReportInputError(f"unknown analysis figure {name!r}; expected one of {list(NAMES)}")
    require(name, profile)
    return _builders()[name](profile, root)


def write(name: str, profile: dict, root: str | Path = ".") -> dict[str, Path]:
    """Build, draw and write paper_figures/<profile>/<name>.{png,pdf,csv}; nothing on error."""
    import matplotlib.pyplot as plt

    from mat.report.figures import figure_bytes, figure_paths

    af = build(name, profile, root)
    fig = af.draw(af)
    try:
        png, pdf = figure_bytes(fig)
    finally:
        plt.close(fig)
    paths = figure_paths(name, profile, root)
    write_all_atomic({paths["png"]: png, paths["pdf"]: pdf, paths["csv"]: af.data.to_csv(index=False, na_rep="")})
    return paths
