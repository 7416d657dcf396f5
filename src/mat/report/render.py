"""A `Table` as CSV (one row per method; mean, std and n per measure) and as Markdown (best in bold)."""

from __future__ import annotations

import io

import pandas as pd

from mat.report.stats import fmt_pm
from mat.report.table_model import Table


def to_frame(table: Table) -> pd.DataFrame:
    records = []
    for row in table.rows:
        rec: dict[str, object] = {"method": row.method, "label": row.label, "n_seeds": row.n_seeds}
        rec.update(table.shared)
        for col in table.columns:
            s = row.cells[col.key].summary
            rec[f"{col.key}_mean"] = s.mean
            rec[f"{col.key}_std"] = s.std
            rec[f"{col.key}_n"] = s.n
        rec.update(row.extra)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    # floats as repr (shortest text that reads back bitwise equal); NaN as an empty cell
    to_frame(table).to_csv(buf, index=False, na_rep="")
    return buf.getvalue()


def cell_text(table: Table, method: str, key: str) -> str:
    row = table.row(method)
    col = next(c for c in table.columns if c.key == key)
    cell = row.cells[key]
    if not cell.summary.present:
        return cell.missing + cell.mark
    text = fmt_pm(cell.summary, col.digits, col.style)
    if method in table.best(key):
        text = f"**{text}**"
    return text + cell.mark + cell.suffix


def to_markdown(table: Table) -> str:
    headers = ["Method", "n seeds"] + [c.header for c in table.columns]
    lines = [f"### {table.title}", "", "| " + " | ".join(headers) + " |",
             "|" + "|".join([" --- "] + [" ---: "] * (len(headers) - 1)) + "|"]
    for row in table.rows:
        cells = [row.label, str(row.n_seeds)] + [cell_text(table, row.method, c.key) for c in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    for note in table.footnotes:
        lines.extend(["", note])
    return "\n".join(lines) + "\n"
