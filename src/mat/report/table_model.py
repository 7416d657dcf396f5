"""A report table as data: columns (what each measures, which way is better) and one row per method.

Builders (`lm_table`, `vision_table`) fill it from runs; `render` turns it into the CSV and the
Markdown. Keeping the numbers in one structure means the CSV and the Markdown can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mat.report.stats import Summary


@dataclass(frozen=True)
class Column:
    key: str  # CSV stem: the CSV has key_mean, key_std, key_n
    header: str  # Markdown header
    better: str = "lower"  # "lower" | "higher" | "" (no best value in bold)
    digits: int = 3
    style: str = "f"  # format style of the numbers: "f" fixed, "g" significant digits


@dataclass(frozen=True)
class Cell:
    summary: Summary
    mark: str = ""  # footnote mark after the value, e.g. "†"
    missing: str = "n/a"  # shown when no seed has a value (e.g. "not reached")
    suffix: str = ""  # shown after the value, e.g. " (1/2 seeds reached)"


@dataclass
class Row:
    method: str  # the profile's method key
    label: str  # the paper's row label
    n_seeds: int
    cells: dict[str, Cell]
    extra: dict[str, object] = field(default_factory=dict)  # more CSV columns (flags, counts)

    def complete(self, key: str) -> bool:
        """Every seed has a value in this column (only then may it compete for bold)."""
        return self.cells[key].summary.n == self.n_seeds


@dataclass
class Table:
    name: str  # table1, ...
    title: str
    columns: list[Column]
    rows: list[Row]
    shared: dict[str, object] = field(default_factory=dict)  # CSV columns equal on every row (budgets)
    footnotes: list[str] = field(default_factory=list)

    def row(self, method: str) -> Row:
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(f"{self.name}: no row for method {method!r}; rows: {[r.method for r in self.rows]}")

    def best(self, key: str) -> set[str]:
        """Methods whose mean is the best in column `key` (ties all count); complete rows only."""
        col = next(c for c in self.columns if c.key == key)
        if not col.better:
            return set()
        means = {r.method: r.cells[key].summary.mean for r in self.rows if r.complete(key)}
        if not means or len(self.rows) < 2:  # a lone row is not "best" of anything
            return set()
        target = min(means.values()) if col.better == "lower" else max(means.values())
        return {m for m, v in means.items() if v == target}
