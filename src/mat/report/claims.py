"""Section 5.1's quantitative claims, each checked against a profile's tables with the seeds' spread.

Every claim names the table column it reads, the methods it compares and the rule that judges it
(`verdicts`). Beside our verdict stand the paper's words and what the paper's own table implies
(the same formula on its published means), so a reader sees where the paper's text and tables
already disagree (e.g. Table 2's "10.4% improved test perplexity").

Claims are judged on the paper's definitions: "at convergence" is the evaluation with the best test
loss (Table 1/2 caption), budgets are read by interpolation at the budget. A computation claim is
judged twice: on the measured count (`computation_pflops`) and on the paper's accounting
(`computation_paper_estimate_pflops`: backward = 2 x the forward of the modules updated), the
second under the id `<claim>_paper_accounting`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mat.report import verdicts as v
from mat.report.labels import profile_caption
from mat.report.paper_numbers import PAPER_BUDGETS_PFLOPS, PAPER_TABLES
from mat.report.runs import ReportInputError
from mat.report.targets import TARGETS, available

BASELINES = ("vanilla", "rand", "multirate")


@dataclass(frozen=True)
class Claim:
    id: str
    table: str
    text: str  # may name {b1}, {b2}, {b3}: replaced by the profile's budget
    paper: str  # the paper's own figure, as its text states it
    kind: str  # better | not_worse | about_ppl | about_ratio | sooner
    key: str  # MAT's column in the table CSV (without _mean/_std/_n)
    others: tuple[str, ...] = ("vanilla",)  # the methods MAT is compared with
    ref_key: str | None = None  # the others' column, when it differs from MAT's
    lower_is_better: bool = True
    paper_pct: float | None = None  # for `about` claims
    paper_key: str | None = None  # the paper table's column, when it differs from `key`


def _lm_claims(t: str, n: str) -> list[Claim]:
    return [Claim(f"{t}_val_best_b{i}", t, f"MAT has the lowest validation loss at budget {i} ({{b{i}}})",
                  f"bold in {n}", "better", f"val_loss_at_b{i}", BASELINES) for i in (1, 2, 3)]


PAPER_ACCOUNTING = "computation_paper_estimate_pflops"


def _with_paper_accounting(claims: list[Claim]) -> list[Claim]:
    """Each computation claim, then the same claim on the paper's accounting of compute."""
    out = []
    for c in claims:
        out.append(c)
        if c.key == "computation_pflops":
            out.append(Claim(f"{c.id}_paper_accounting", c.table,
                             c.text + " -- on the paper's accounting (backward = 2 × forward of the updated modules)",
                             c.paper, c.kind, PAPER_ACCOUNTING, c.others, c.ref_key, c.lower_is_better, c.paper_pct,
                             paper_key="computation_pflops"))
    return out


CLAIMS: list[Claim] = _with_paper_accounting([
    Claim("table1_reach", "table1",
          "MAT reaches at budget 1 ({b1}) the validation loss vanilla reaches at budget 3 ({b3}): about half the compute",
          "4.46 @ 10 PFLOPs vs 4.48 @ 20 PFLOPs", "not_worse", "val_loss_at_b1", ("vanilla",), ref_key="val_loss_at_b3"),
    *_lm_claims("table1", "Table 1"),
    Claim("table1_test_best", "table1", "MAT has the best (lowest) test loss at convergence",
          "4.27 vs 4.41 / 4.82 / 4.48", "better", "test_loss", BASELINES),
    Claim("table1_test_ppl", "table1", "MAT reduces test perplexity by about 15% vs vanilla",
          "about 15%", "about_ppl", "test_loss", paper_pct=15.0),
    Claim("table1_compute_saving", "table1", "MAT saves about 41% of vanilla's computation (until convergence)",
          "41%", "about_ratio", "computation_pflops", paper_pct=41.0),
    Claim("table1_compute_least", "table1", "MAT needs the least computation until convergence",
          "16.50 vs 28.70 / 21.53 / 19.46 PFLOPs", "better", "computation_pflops", BASELINES),
    *_lm_claims("table2", "Table 2; text: lowest at 200/400/600 PFLOPs"),
    *[Claim(f"table2_val_ppl_b{i}", "table2", f"MAT reduces validation perplexity by about {p}% vs vanilla at budget {i} ({{b{i}}})",
            f"{p}%", "about_ppl", f"val_loss_at_b{i}", paper_pct=p) for i, p in ((1, 52.3), (2, 25.2), (3, 18.1))],
    *[Claim(f"table2_val_logppl_b{i}", "table2", f"MAT reduces validation log perplexity by about {p}% vs vanilla at budget {i} ({{b{i}}})",
            f"{p}%", "about_ratio", f"val_loss_at_b{i}", paper_pct=p) for i, p in ((1, 25.9), (2, 16.9), (3, 12.4))],
    Claim("table2_test_ppl", "table2", "MAT improves test perplexity by about 10.4% vs vanilla",
          "10.4%", "about_ppl", "test_loss", paper_pct=10.4),
    Claim("table2_test_best", "table2", "MAT has the best (lowest) test loss at convergence",
          "1.68 vs 1.74 / 1.93 / 1.77", "better", "test_loss", BASELINES),
    Claim("table2_compute_least", "table2", "MAT needs the least computation until convergence",
          "614.8 vs 1155.2 / 837.5 / 740.4 PFLOPs", "better", "computation_pflops", BASELINES),
    Claim("table3_faster_95", "table3",
          "MAT reaches 95% train accuracy with about 47.3% less computation than vanilla (reading 'converges faster (47.3%)' as time to 95%)",
          "47.3%", "about_ratio", "pflops_to_train_acc_95", paper_pct=47.3),
    Claim("table3_faster_convergence", "table3",
          "MAT converges with about 47.3% less computation than vanilla (computation until the best test accuracy)",
          "47.3%", "about_ratio", "computation_pflops", paper_pct=47.3),
    Claim("table3_faster_99", "table3", "MAT reaches 99% train accuracy with less computation than vanilla",
          "7.21 vs 12.06 PFLOPs", "sooner", "pflops_to_train_acc_99"),
    Claim("table3_test_acc", "table3", "MAT's test accuracy is at least vanilla's",
          "93.86 vs 93.77", "not_worse", "test_acc_pct", lower_is_better=False),
])


@dataclass(frozen=True)
class Result:
    claim: Claim
    text: str
    paper_table: str
    verdict: str
    ours: str
    rule: str
    note: str


class TableCsv:
    """One table CSV as written by `python -m mat table`: values by (method, column)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.df = pd.read_csv(path).set_index("method")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, KeyError) as exc:
            raise ReportInputError(f"{path}: not a table CSV written by `python -m mat table`: {exc}") from exc

    def has(self, method: str, key: str) -> bool:
        return method in self.df.index and f"{key}_mean" in self.df.columns

    def value(self, method: str, key: str) -> v.Value:
        row = self.df.loc[method]
        return v.Value(float(row[f"{key}_mean"]), float(row[f"{key}_std"]), int(row[f"{key}_n"]), int(row["n_seeds"]))

    def final_min(self, method: str) -> float:
        """Compute of the method's shortest run (PFLOPs); NaN if the table does not say."""
        col = "final_pflops_min" if "final_pflops_min" in self.df.columns else None
        return float(self.df.loc[method, col]) if col else math.nan

    def budget(self, i: int) -> str | None:
        col = f"budget_b{i}_pflops"
        if col not in self.df.columns:
            return None
        pf, frac = float(self.df[col].iloc[0]), float(self.df.get(f"budget_b{i}_fraction", pd.Series([math.nan])).iloc[0])
        return f"{pf:.3g} PFLOPs" if math.isnan(frac) else f"{frac:g} × vanilla = {pf:.3g} PFLOPs"


def _describe(claim: Claim, table: TableCsv | None) -> str:
    text = claim.text
    for i in (1, 2, 3):
        ours = table.budget(i) if table is not None else None
        paper = PAPER_BUDGETS_PFLOPS.get(claim.table, (None,) * 3)[i - 1]
        text = text.replace(f"{{b{i}}}", f"{ours or 'budget missing'}; paper: {paper} PFLOPs")
    return text


def _judge(claim: Claim, table: "TableCsv") -> v.Judgement:
    """Apply the claim's rule to the table's values."""
    get = table.value
    mat = get("mat", claim.key)
    ref_key = claim.ref_key or claim.key
    if claim.kind == "better":
        return v.better(mat, {m: get(m, ref_key) for m in claim.others}, claim.lower_is_better)
    ref = get(claim.others[0], ref_key)
    if claim.kind == "not_worse":
        return v.not_worse(mat, ref, claim.others[0], claim.lower_is_better)
    if claim.kind == "about_ppl":
        return v.about_perplexity(mat, ref, claim.paper_pct)
    if claim.kind == "about_ratio":
        return v.about_ratio(mat, ref, claim.paper_pct)
    if claim.kind == "sooner":
        return v.sooner(mat, ref, claim.others[0], table.final_min("mat"), table.final_min(claim.others[0]))
    raise ValueError(f"claim {claim.id}: unknown kind {claim.kind!r}")


def _paper_implies(claim: Claim) -> str:
    """What the paper's own table gives under the same formula (means only)."""
    table = PAPER_TABLES[claim.table]
    mat = table["mat"][claim.paper_key or claim.key]
    refs = {m: table[m][claim.paper_key or claim.ref_key or claim.key] for m in claim.others}
    ref = next(iter(refs.values()))
    if claim.kind == "about_ppl":
        return f"{1 - math.exp(mat - ref):.1%}"
    if claim.kind == "about_ratio":
        return f"{1 - mat / ref:.1%}"
    if claim.kind == "sooner":
        return f"{'yes' if mat < ref else 'no'} ({mat:g} vs {ref:g})"
    sign = 1 if claim.lower_is_better else -1
    ok = all(sign * (r - mat) > 0 for r in refs.values()) if claim.kind == "better" else sign * (ref - mat) >= 0
    return f"{'yes' if ok else 'no'} ({mat:g} vs {' / '.join(f'{r:g}' for r in refs.values())})"


def paper_text_disagrees(claim: Claim) -> str | None:
    """For an `about` claim: a sentence when the paper's own table gives a size outside the band
    the rule accepts around its text's figure (e.g. Table 2 implies 5.8%, the text says 10.4%)."""
    if claim.paper_pct is None:
        return None
    implied = float(_paper_implies(claim).rstrip("%"))
    lo, hi = claim.paper_pct * (1 - v.ABOUT_TOLERANCE), claim.paper_pct * (1 + v.ABOUT_TOLERANCE)
    if lo <= implied <= hi:
        return None
    return (f"{claim.id}: the text says {claim.paper_pct:g}%, the paper's own table gives {implied:.1f}% "
            f"(outside {lo:.1f}-{hi:.1f}%).")


RULE_OF = {"better": "better", "not_worse": "not_worse", "about_ppl": "about", "about_ratio": "about", "sooner": "sooner"}


def evaluate(profile: dict, root: str | Path = ".") -> list[Result]:
    """Every claim's verdict on the profile's table CSVs (`not run` for tables the profile lacks)."""
    claimed = {c.table for c in CLAIMS}  # the appendix tables (5-7) carry no Section 5.1 claim
    have = {t.name for t in available(profile["experiments"]) if t.kind == "table" and t.name in claimed}
    tables: dict[str, TableCsv] = {}
    for name in sorted(have):
        path = Path(root) / "results" / profile["profile"] / f"{name}.csv"
        if not path.is_file():
            raise ReportInputError(
                f"{path}: missing; profile {profile['profile']!r} has {name} "
                f"(build it first: python -m mat table {name} --profile {profile['profile']})"
            )
        tables[name] = TableCsv(path)
    results = []
    for claim in CLAIMS:
        rule = RULE_OF[claim.kind]
        if claim.table not in have:
            exps = ", ".join(TARGETS[claim.table].experiments)
            results.append(Result(claim, _describe(claim, None), _paper_implies(claim), v.NOT_RUN, "",
                                  rule, f"the profile has no experiment {exps}"))
            continue
        table = tables[claim.table]
        needed = [(m, k) for m, k in [("mat", claim.key)] + [(o, claim.ref_key or claim.key) for o in claim.others]]
        absent = [f"{m}.{k}" for m, k in needed if not table.has(m, k)]
        if absent:
            j = v.Judgement(v.UNSURE, "", f"not in {table.path.name}: {', '.join(absent)}")
            rule = "missing"
        else:
            j = _judge(claim, table)
        results.append(Result(claim, _describe(claim, table), _paper_implies(claim), j.verdict, j.ours, rule, j.note))
    return results


def to_frame(results: list[Result]) -> pd.DataFrame:
    return pd.DataFrame([
        {"id": r.claim.id, "table": r.claim.table, "claim": r.text, "paper": r.claim.paper,
         "paper_table_implies": r.paper_table, "ours": r.ours, "verdict": r.verdict, "rule": r.rule, "note": r.note}
        for r in results
    ])


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(profile: dict, results: list[Result]) -> str:
    counts = pd.Series([r.verdict for r in results]).value_counts()
    order = [v.HOLDS, v.FAILS, v.UNSURE, v.NOT_RUN]
    lines = [
        f"# Section 5.1 claims checked on the {profile['profile']} profile",
        "",
        f"{profile_caption(profile)}. Each claim of the paper's Section 5.1 is judged on this profile's "
        "tables (mean ± sample std over seeds), by the rule named in the last column (rules below). "
        "'paper' is the figure the paper's text states; 'paper's table' is what the paper's own "
        "Tables 1-3 give under the same formula.",
        "",
        "Judged on the paper's definitions: 'at convergence' is the evaluation with the best test loss "
        "(Table 1/2 caption: \"the FLOPs model used until achieving best test loss\"; Table 3: the best test "
        "accuracy), validation loss at a budget is read by interpolation at the budget, and computation until "
        "a train accuracy on the per-epoch accuracy. Each computation claim is judged on the measured count "
        "(the forward and backward that really ran, FlopCounterMode) and again on the paper's accounting "
        "(`*_paper_accounting`: forward + 2 × (forward minus the forward of the modules not updated), i.e. "
        "what freezing would save if a frozen module cost no backward at all). The two differ by what really "
        "runs: input gradients still flow through frozen modules to the layers below, and the mNTK "
        "evaluations MAT needs are in the measured count only.",
        "",
        "Verdicts: " + ", ".join(f"{k}: {int(counts.get(k, 0))}" for k in order) + ".",
        "",
        "| id | claim | paper | paper's table | ours | verdict | note | rule |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        cells = [r.claim.id, r.text, r.claim.paper, r.paper_table, r.ours or "—", f"**{r.verdict}**", r.note or "", r.rule]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    disagree = [d for d in (paper_text_disagrees(r.claim) for r in results) if d]
    if disagree:
        lines += ["", "## Where the paper's text and its own tables disagree", ""]
        lines += [f"- {d}" for d in disagree]
    lines += ["", "## Rules", ""]
    lines += [f"- **{name}**: {text}" for name, text in v.RULES.items()]
    lines += ["- **not run**: the profile has no experiment for this table, so nothing was measured.", ""]
    return "\n".join(lines)
