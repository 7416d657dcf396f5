"""How often MAT evaluated the mNTK in the runs behind a table, beside the table's own numbers.

Each finished run records its evaluation epochs (summary.json `mat_evaluations`). Eq. 6 (the
temporal policy) compares Delta_t with Delta_{t-1} and Delta_1, so it can act only from the third
evaluation (t = 2) on: a MAT row built from runs with fewer evaluations shows Eq. 4-5 alone. This
adds, to every row with MAT runs, the CSV columns `mat_evaluations` (the fewest over the row's
runs) and `mat_evaluation_epochs`, and one footnote; rows of other methods are left alone, and a
table whose runs recorded nothing is returned unchanged.
"""

from __future__ import annotations

from pathlib import Path

from mat import profiles
from mat.report.runs import mat_evaluations
from mat.report.table_model import Table

MIN_EVALUATIONS = 3  # Eq. 6 needs t >= 2 (mat.schedule.MIN_EVALUATIONS)


def _runs_of_row(profile: dict, experiments: list[str], row_key: str) -> list[profiles.Run]:
    """The MAT runs behind one row: the row is a method of the table's experiment (Tables 1-3, 5),
    or an experiment whose MAT runs it shows (Table 7, one row per model size)."""
    if row_key in profile["experiments"]:
        experiments, methods = [row_key], None
    else:
        methods = {row_key}
    out = []
    for run in profiles.runs(profile, experiments):
        block = profile["experiments"][run.experiment]["methods"][run.method]
        if block["name"] in ("mat", "mat_prune") and (methods is None or run.method in methods):
            out.append(run)
    return out


def annotate(table: Table, profile: dict, experiments: list[str], root: str | Path) -> Table:
    """`table` with its MAT rows' evaluation counts (in place; also returned)."""
    seen = []
    for row in table.rows:
        recorded = [e for e in (mat_evaluations(Path(root) / r.dir) for r in _runs_of_row(profile, experiments, row.method))
                    if e is not None]
        if not recorded:
            continue
        counts = [len(e) for e in recorded]
        epochs = sorted({" ".join(map(str, e)) for e in recorded})
        row.extra["mat_evaluations"] = min(counts)
        row.extra["mat_evaluation_epochs"] = "; ".join(epochs)
        span = str(min(counts)) if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
        seen.append(f"{row.label}: {span} (epochs {' or '.join(e or 'none' for e in epochs)})")
    if seen:
        few = any(row.extra.get("mat_evaluations", MIN_EVALUATIONS) < MIN_EVALUATIONS for row in table.rows)
        table.footnotes.append(
            "MAT's mNTK evaluations per run (0-based epochs): " + "; ".join(seen) + ". Eq. 6 (the temporal "
            "policy) can act only from the third evaluation on"
            + (": in runs with fewer, only Eq. 4-5 decided." if few else ".")
        )
    return table
