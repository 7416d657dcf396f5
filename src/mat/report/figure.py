"""What every paper figure is: its numbers as one long table, and a drawing made from that table alone.

A builder (`curve_figures`, `mntk_figures`, `overfit_figure`, `head_training_figure`) returns a
`Figure`; `mat.report.targets` writes `<name>.csv` (exactly the plotted numbers), `<name>.png` and
`<name>.pdf` from it. This module sits at the bottom of the report package: it imports nothing
from it, and matplotlib only when a figure is drawn.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

DPI = 150


@dataclass(frozen=True)
class Figure:
    name: str
    title: str  # names the profile (labels.profile_caption)
    subtitle: str  # how the numbers were obtained
    data: pd.DataFrame  # written as <name>.csv
    draw: Callable[["Figure"], object]  # -> matplotlib Figure, from `data` alone (the caller closes it)
    facts: dict = field(default_factory=dict)  # numbers the figure states in text (tests read them)


def style():
    """(pyplot, seaborn) with the files-only backend and the report's theme."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def finish(fig, f: Figure) -> None:
    """Title (naming the profile) on top, how-it-was-measured line at the bottom."""
    fig.suptitle(f.title, fontsize=10.5)
    fig.text(0.5, 0.005, f.subtitle, ha="center", va="bottom", fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.08, 1, 1))


def render(f: Figure) -> dict[str, bytes | str]:
    """The figure's files: PNG at DPI, PDF without a creation date (so both are reproducible), CSV."""
    plt, _ = style()
    fig = f.draw(f)
    try:
        png, pdf = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=DPI)
        fig.savefig(pdf, format="pdf", metadata={"CreationDate": None})
    finally:
        plt.close(fig)
    return {"png": png.getvalue(), "pdf": pdf.getvalue(), "csv": f.data.to_csv(index=False, na_rep="")}
