"""The pages of Snakemake's HTML report (`snakemake --report results/<profile>/report.html`).

`python -m mat report-pages --profile P` writes `results/<P>/report/`:

- `captions/<name>.rst`: one caption per table, figure, the claims check and the runs table: the
  paper's counterpart, the profile and seeds behind it, and where our definition differs from the
  paper's (each target's registry entry, `PAGES` below for the claims and runs; the profile's own
  numbers are filled in from its YAML);
- `<table>.html`, `claims.html`: the Markdown tables rendered as HTML, so the report shows them
  instead of offering a download;
- `runs.csv`, `runs.html`: one row per training run, read from its `summary.json`;
- `benchmarks/<name>.html`: the committed `benchmarks/results/*.csv` as tables;
- `front.rst`: the report's front page (included by `workflow/report/workflow.rst`): the profile,
  the claims verdict counts, the commit, library versions and hardware of the runs, and the runs.

Everything here is read from the pipeline's own outputs; nothing is retrained or recomputed.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from mat import profiles
from mat.cli.profile_args import add_profile_arguments, load
from mat.atomic import write_all_atomic, write_atomic
from mat.report.labels import method_label, profile_caption, pruning_label, table_title
from mat.report.runs import PFLOP
from mat.report.targets import TARGETS, available

MAIN, APPENDIX, FIGURES, CLAIMS, RUNS = (
    "1 Main tables (Sec. 5.1)",
    "2 Appendix tables (App. B)",
    "3 Figures",
    "4 Claims (Sec. 5.1)",
    "5 Runs",
)



@dataclass(frozen=True)
class Page:
    """What the report says about one result: its section, its paper counterpart, our differences."""

    section: str
    paper: str
    differs: tuple[str, ...]


# Each table's and figure's page comes from its registry entry (targets.Target.paper, .differs);
# the claims check and the runs table are the report's own.
PAGES: dict[str, Page] = {
    "claims": Page(CLAIMS, "The quantitative claims of Sec. 5.1's text (and what the paper's own Tables "
                   "1-3 give for each).",
                   ("Each claim is judged on this profile's tables by the rule named in its row "
                    "(better, not_worse, about, sooner, missing): a difference within the seeds' "
                    "spread is inconclusive, not a win. Where the paper's text and its tables "
                    "disagree, both are listed.",)),
    "runs": Page(RUNS, "None (ours): every training run of the profile, read from its summary.json.",
                 ("Wall time is the trainer's own clock (``wall_seconds``): the training steps and the "
                  "start-of-epoch measurements (mNTK, SNIP), summed across resumes; evaluations and "
                  "start-up are not in it (Snakemake's job times under Statistics include them). "
                  "Computation is the run's total measured FLOPs without embeddings.",)),
}
TABLE_PAGES = ("claims",)  # Markdown pages besides the tables


def report_names(profile: dict) -> list[str]:
    """Every result of a profile that the report shows, in registry order, then claims and runs."""
    names = [t.name for t in available(profile["experiments"])]
    tables = [n for n in names if TARGETS[n].kind == "table"]
    return names + (["claims"] if tables else []) + ["runs"]


def report_targets(profile: dict) -> list[str]:
    """The report's own pages a pipeline run builds: captions, runs table, front page, tables as HTML."""
    rep = f"results/{profile['profile']}/report"
    pages = [n for n in report_names(profile) if n == "claims" or (n in TARGETS and TARGETS[n].kind == "table")]
    return [f"{rep}/front.rst"] + [f"{rep}/{p}.html" for p in pages]


def captions_fingerprint(profile: dict) -> str:
    """Hash of what the captions quote from the profile beyond the runs (every experiment's
    `report:` block: budgets, targets), so the report_front rule reruns when one is edited."""
    import hashlib

    blocks = {e: cfg.get("report") or {} for e, cfg in profile["experiments"].items()}
    return hashlib.sha256(json.dumps(blocks, sort_keys=True).encode()).hexdigest()[:16]


def _result_name(wildcards) -> str:
    """The result a Snakemake job makes, from its wildcards (table, figure or page)."""
    return wildcards.get("table") or wildcards.get("figure") or wildcards.get("page")


def report_section(wildcards) -> str:
    """The report category of a job's result (Snakemake calls it with the job's wildcards)."""
    return section(_result_name(wildcards))


def report_title(wildcards) -> str:
    return title(_result_name(wildcards))


def result_labels(file_kind: str):
    """The report's label columns of one output: which paper result, which kind of file."""

    def labels(wildcards) -> dict[str, str]:
        return {"result": report_title(wildcards), "file": file_kind}

    return labels


def page(name: str) -> Page:
    """The report's entry of a result: a table's or figure's from its registry entry (section from
    its kind and group), the claims check's and the runs table's from PAGES."""
    if name in PAGES:
        return PAGES[name]
    t = TARGETS[name]
    section = FIGURES if t.kind == "figure" else MAIN if t.group == "paper" else APPENDIX
    return Page(section, t.paper or t.what,
                t.differs or ("Not described yet: give its entry in src/mat/report/targets.py `paper` and `differs`.",))


def section(name: str) -> str:
    return page(name).section


def title(name: str) -> str:
    """'Table 1', 'Figure 1a', 'Curves behind Table 1', 'Claims check', 'Runs'."""
    if name.startswith("table"):
        return table_title(name)
    if name.startswith("fig"):
        return f"Figure {name.removeprefix('fig')}"
    if name.startswith("curves_"):
        return f"Curves behind {table_title(name.removeprefix('curves_'))}"
    return {"claims": "Claims check", "runs": "Runs"}.get(name, name)


# ------------------------------------------------------------------------------------------ captions
def _method(profile: dict, experiment: str, method: str) -> str:
    """The label the tables use: 'SNIP (50%)' for a pruning baseline, else the paper's row label."""
    if profile["experiments"][experiment]["methods"][method].get("name") == "snip":
        return pruning_label(profile, experiment, method)
    return method_label(profile, experiment, method)


def _seeds_line(profile: dict, experiments: tuple[str, ...]) -> str:
    if not experiments:
        return "Seeds: none (no training runs; measured when the pipeline runs)."
    parts = []
    for exp in experiments:
        runs = list(profiles.runs(profile, [exp]))
        seeds = sorted({r.seed for r in runs})
        methods = list(dict.fromkeys(_method(profile, exp, r.method) for r in runs))
        parts.append(f"``{exp}``: {', '.join(methods)} x seeds {', '.join(map(str, seeds))} ({len(runs)} runs)")
    return "Runs: " + "; ".join(parts) + "."


def _profile_specifics(profile: dict, name: str) -> list[str]:
    """The profile's own numbers where a definition depends on them."""
    exps = profile["experiments"]
    out = []
    rep = exps.get(name, {}).get("report", {}) if name.startswith("table") else {}
    if rep.get("budget_fractions"):
        fr = ", ".join(f"{f:g}" for f in rep["budget_fractions"])
        out.append(f"This profile's budgets: {fr} x the vanilla computation.")
    if rep.get("train_accuracy_targets"):
        tg = ", ".join(f"{t * 100:g}%" for t in rep["train_accuracy_targets"])
        out.append(f"This profile's train-accuracy targets: {tg} (the paper: 95%, 99%).")
    return out


def _rst_escape(text: str) -> str:
    return text.replace("*", r"\*").replace("|", r"\|")


def caption(profile: dict, name: str) -> str:
    """The reStructuredText caption of one result."""
    entry = page(name)
    if name in TARGETS:
        exps = TARGETS[name].experiments
    elif name == "claims":
        exps = tuple(dict.fromkeys(e for t in available(profile["experiments"])
                                   if t.kind == "table" for e in t.experiments))
    else:
        exps = ()
    what = re.sub(r"^(Table|Figure) \w+: ", "", TARGETS[name].what) if name in TARGETS else ""
    lines = [
        f"**{title(name)}** -- {_rst_escape(what)}".rstrip(" -"),
        "",
        f"**Paper's counterpart:** {_rst_escape(entry.paper)}",
        "",
        f"**Profile:** ``{profile['profile']}`` ({profile_caption(profile)}). "
        + (_rst_escape(_seeds_line(profile, exps)) if name != "runs" else
           f"All {len(list(profiles.runs(profile)))} runs of its {len(profile['experiments'])} experiments; "
           f"seeds {', '.join(map(str, profile['seeds']))}."),
        "",
        "**Where we differ from the paper:**",
        "",
    ]
    lines += [f"- {_rst_escape(d)}" for d in entry.differs + tuple(_profile_specifics(profile, name))]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- Markdown -> HTML page
_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; font-size: 14px;
       color: #222; margin: 1em 1.5em; line-height: 1.45; }
h1, h2, h3 { font-weight: 600; margin: 0.8em 0 0.4em; }
h3 { font-size: 1.15em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
th { background: #f0f2f5; max-width: 11em; font-weight: 600; }
tr:nth-child(even) td { background: #fafafa; }
td.r, th.r { text-align: right; white-space: nowrap; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
p, li { max-width: 70em; }
"""


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)]


def markdown_to_html(md: str, page_title: str) -> str:
    """The Markdown the report commands write (headings, pipe tables, lists, paragraphs, **bold**,
    `code`) as one standalone HTML page. Anything else is shown as a paragraph of text."""
    body: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", line):
            level = len(m.group(1))
            body.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            body.append(_table_html(block))
        elif re.match(r"^\s*[-*]\s+", line):
            items = []
            while i < len(lines) and re.match(r"^\s*[-*]\s+", lines[i]):
                items.append(re.sub(r"^\s*[-*]\s+", "", lines[i]))
                i += 1
            body.append("<ul>" + "".join(f"<li>{_inline(t)}</li>" for t in items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"^(#|\s*\||\s*[-*]\s)", lines[i]):
                para.append(lines[i].strip())
                i += 1
            body.append(f"<p>{_inline(' '.join(para))}</p>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(page_title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _table_html(block: list[str]) -> str:
    rows = [_cells(r) for r in block]
    align: list[str] = []
    if len(rows) > 1 and all(re.fullmatch(r":?-{3,}:?", c) for c in rows[1] if c):
        align = ["r" if c.endswith(":") and not c.startswith(":") else "" for c in rows[1]]
        head, rows = rows[0], rows[2:]
    else:
        head = None

    def cell(tag: str, text: str, j: int) -> str:
        cls = f' class="{align[j]}"' if j < len(align) and align[j] else ""
        return f"<{tag}{cls}>{_inline(text.replace(chr(92) + '|', '|'))}</{tag}>"

    out = ["<table>"]
    if head is not None:
        out.append("<thead><tr>" + "".join(cell("th", c, j) for j, c in enumerate(head)) + "</tr></thead>")
    out.append("<tbody>")
    for r in rows:
        out.append("<tr>" + "".join(cell("td", c, j) for j, c in enumerate(r)) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


# ----------------------------------------------------------------------------------- runs and front
RUN_FIELDS = ("experiment", "method", "seed", "steps", "epochs", "stopped_early", "wall_seconds",
              "pflops_total_noemb", "pflops_mntk", "device", "cpu", "gpu", "git_commit", "python",
              "torch", "transformers")


def runs_rows(profile: dict, root: Path) -> list[dict]:
    """One row per run of the profile, from its summary.json (a missing run is an error)."""
    rows, missing = [], []
    for run in profiles.runs(profile):
        path = root / run.dir / "summary.json"
        if not path.is_file():
            missing.append(str(path))
            continue
        s = json.loads(path.read_text())
        comp, hw, ver = s.get("compute", {}), s.get("hardware", {}), s.get("versions", {})
        rows.append({
            "experiment": run.experiment, "method": run.method, "seed": run.seed,
            "steps": s.get("steps"), "epochs": s.get("epochs"),
            "stopped_early": bool(s.get("stopped_early", {}).get("stopped")),
            "wall_seconds": round(float(s.get("wall_seconds") or 0.0), 1),
            "pflops_total_noemb": comp.get("flops_total_noemb", 0) / PFLOP,
            "pflops_mntk": comp.get("flops_mntk", 0) / PFLOP,
            "device": hw.get("device"), "cpu": hw.get("cpu"), "gpu": hw.get("gpu"),
            "git_commit": s.get("git_commit"),
            "python": ver.get("python"), "torch": ver.get("torch"), "transformers": ver.get("transformers"),
        })
    if missing:
        raise FileNotFoundError(f"{len(missing)} run(s) have no summary.json (not trained yet): {missing[:3]} ...")
    return rows


def _rst_table(header: list[str], rows: list[list[str]]) -> str:
    """A list-table (robust to long cells and any characters)."""
    out = [".. list-table::", "   :header-rows: 1", ""]
    for r in [header] + rows:
        out.append("   * - " + (_rst_escape(str(r[0])) or " "))
        out += [f"     - {_rst_escape(str(c)) or ' '}" for c in r[1:]]
    return "\n".join(out) + "\n"


def _distinct(rows: list[dict], *keys: str) -> str:
    vals = list(dict.fromkeys(" / ".join(str(r[k]) for k in keys if r.get(k) not in (None, "")) for r in rows))
    return "; ".join(v for v in vals if v) or "unknown"


def verdict_counts(claims_csv: Path) -> dict[str, int]:
    counts = {"holds": 0, "does not hold": 0, "inconclusive": 0, "not run": 0}
    with open(claims_csv, newline="") as f:
        for row in csv.DictReader(f):
            counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return counts


def runs_by_result(rows: list[dict]) -> list[list[str]]:
    """One row per paper result that trains (the first in the registry to read an experiment owns
    its runs: Table 7 holds its five sizes): runs, wall time and measured computation."""
    owner = {}
    for t in TARGETS.values():
        for e in t.experiments:
            owner.setdefault(e, title(t.name))
    out = []
    for res in dict.fromkeys(owner.get(r["experiment"], r["experiment"]) for r in rows):
        rs = [r for r in rows if owner.get(r["experiment"], r["experiment"]) == res]
        exps = list(dict.fromkeys(r["experiment"] for r in rs))
        label = res if len(exps) == 1 else f"{res} ({len(exps)} experiments)"
        out.append([label, str(len(rs)), f"{sum(r['wall_seconds'] for r in rs) / 60:.1f}",
                    f"{sum(r['pflops_total_noemb'] for r in rs):.3g}"])
    return out


def front_rst(profile: dict, rows: list[dict], claims: dict[str, int] | None) -> str:
    """The front page's body. The report shows it in a narrow column that does not scroll, so it is
    kept to one screen: every run is on the Runs page."""
    name = profile["profile"]
    wall = sum(r["wall_seconds"] for r in rows)
    commits = sorted({str(r["git_commit"]) for r in rows})
    out = [
        f"**Profile** ``{name}`` ({_rst_escape(profile.get('description', ''))}): "
        f"*{_rst_escape(profile_caption(profile).split(': ', 1)[-1])}*; seeds {', '.join(map(str, profile['seeds']))}.",
        "",
    ]
    if claims is not None:
        out += [
            "**Claims of Sec. 5.1:** " + ", ".join(f"**{k}** {v}" for k, v in claims.items())
            + f"; each claim with its rule under `{CLAIMS}`_.",
            "",
        ]
    out += [
        "- **Commit:** " + ", ".join(f"``{c}``" for c in commits[:2])
        + (f" and {len(commits) - 2} more" if len(commits) > 2 else "")
        + (" (the runs were trained from different commits: see runs.csv)" if len(commits) > 1 else ""),
        "- **Python / torch / transformers:** " + _rst_escape(_distinct(rows, "python", "torch", "transformers")),
        "- **Hardware:** " + _rst_escape(_distinct(rows, "device", "cpu", "gpu")),
        f"- **Runs:** {len(rows)} training runs, {wall / 60:.1f} min of training wall time, "
        f"{sum(r['pflops_total_noemb'] for r in rows):.3g} PFLOPs measured; every run under `{RUNS}`_.",
        "",
        _rst_table(["trained for", "runs", "wall time (min)", "PFLOPs"], runs_by_result(rows)),
    ]
    return "\n".join(out)


def runs_markdown(profile: dict, rows: list[dict]) -> str:
    """Every run as a Markdown table (rendered as the report's Runs page)."""
    head = ["Experiment", "Method", "Seed", "Steps", "Epochs", "Stopped early", "Wall (s)", "PFLOPs",
            "of which mNTK", "Commit"]
    lines = [f"### Runs of the {profile['profile']} profile ({profile_caption(profile)})", "",
             "| " + " | ".join(head) + " |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        cells = [r["experiment"], _method(profile, r["experiment"], r["method"]), r["seed"], r["steps"],
                 r["epochs"], "yes" if r["stopped_early"] else "no", f"{r['wall_seconds']:.1f}",
                 f"{r['pflops_total_noemb']:.3g}", f"{r['pflops_mntk']:.3g}", f"`{str(r['git_commit'])[:10]}`"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "Wall time: the trainer's own clock (training steps and start-of-epoch mNTK / SNIP "
              "measurements; not evaluations or start-up). PFLOPs: the run's total "
              "measured computation without embeddings (`flops_total_noemb`); mNTK: the method's own "
              "mNTK or SNIP measurements, part of the total. Commit: its first 10 characters. Every column, "
              "with the full commit, device, CPU, GPU and library versions: runs.csv."]
    return "\n".join(lines) + "\n"


def _runs_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RUN_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


BENCHMARKS = "benchmarks/results"  # committed CSVs of benchmarks/*.py (not made by the DAG)


def benchmark_csvs(root: str | Path = ".") -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (Path(root) / BENCHMARKS).glob("*.csv"))


def csv_to_html(path: Path, page_title: str) -> str:
    """A CSV file as an HTML table (numbers right-aligned)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))

    def is_num(x: str) -> bool:
        try:
            float(x)
            return True
        except ValueError:
            return False

    head, body = (rows[0], rows[1:]) if rows else ([], [])
    align = ["---:" if body and all(is_num(r[j]) or not r[j] for r in body if j < len(r)) else "---"
             for j in range(len(head))]
    md = [f"### {page_title}", "", "| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body]
    return markdown_to_html("\n".join(md) + "\n", page_title)


def write_pages(profile: dict, root: str | Path = ".") -> Path:
    """Captions, the runs table and the front page (all or none); returns the folder."""
    root = Path(root)
    name = profile["profile"]
    out = root / "results" / name / "report"
    rows = runs_rows(profile, root)
    names = report_names(profile)
    claims_csv = root / "results" / name / "claims.csv"
    claims = verdict_counts(claims_csv) if "claims" in names else None
    files: dict[Path, str] = {out / "captions" / f"{n}.rst": caption(profile, n) for n in names}
    files[out / "runs.csv"] = _runs_csv(rows)
    files[out / "runs.html"] = markdown_to_html(runs_markdown(profile, rows), f"Runs ({name})")
    files[out / "front.rst"] = front_rst(profile, rows, claims)
    for csv_path in benchmark_csvs(root):
        stem = Path(csv_path).stem
        files[out / "benchmarks" / f"{stem}.html"] = csv_to_html(root / csv_path, f"{stem} ({csv_path})")
    (out / "benchmarks").mkdir(parents=True, exist_ok=True)
    (out / "captions").mkdir(parents=True, exist_ok=True)
    write_all_atomic(files)
    return out


def write_table_page(profile: dict, page: str, root: str | Path = ".") -> Path:
    """results/<profile>/report/<page>.html from results/<profile>/<page>.md."""
    root = Path(root)
    src = root / "results" / profile["profile"] / f"{page}.md"
    dst = root / "results" / profile["profile"] / "report" / f"{page}.html"
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dst, markdown_to_html(src.read_text(), f"{title(page)} ({profile['profile']})"))
    return dst


# ------------------------------------------------------------------------------------ checking a report
def expected_results(profile: dict) -> dict[str, str]:
    """Every file the report must hold for a profile -> the result it belongs to."""
    name = profile["profile"]
    res, fig, rep = f"results/{name}", f"paper_figures/{name}", f"results/{name}/report"
    out: dict[str, str] = {}
    for n in report_names(profile):
        if n == "runs":
            out.update({f"{rep}/runs.csv": n, f"{rep}/runs.html": n})
        elif n == "claims" or TARGETS[n].kind == "table":
            out.update({f"{res}/{n}.csv": n, f"{rep}/{n}.html": n})
        else:
            out.update({f"{fig}/{n}.{ext}": n for ext in ("png", "pdf", "csv")})
    return out


def _js_value(html_text: str, var: str):
    m = re.search(rf"^\s*var {var} = (\{{.*\}}|\".*\");\s*$", html_text, flags=re.MULTILINE)
    if m is None:
        raise ValueError(f"no `var {var} = ...` in the report: not a Snakemake HTML report?")
    return json.loads(m.group(1))


def check_report(profile: dict, report: str | Path) -> list[str]:
    """What a user would miss in `snakemake --report` output: every table, figure, the claims check
    and the runs table, each with its caption, and the front page's profile, claims, commit,
    versions, hardware and runs. Returns the problems (none: the report is complete)."""
    text = Path(report).read_text(encoding="utf-8")
    results, front = _js_value(text, "results"), _js_value(text, "workflow_desc")
    problems = []
    for path, n in expected_results(profile).items():
        entry = results.get(path)
        if entry is None:
            problems.append(f"{path} ({title(n)}) is not in the report")
            continue
        cap = html.unescape(entry.get("caption") or "")
        for needed in ("Paper's counterpart", f"Profile: {profile['profile']}", "Where we differ"):
            if needed not in re.sub(r"<[^>]+>", "", cap):
                problems.append(f"{path}: its caption lacks {needed!r}")
        if not entry.get("data_uri"):
            problems.append(f"{path}: no embedded data")
    plain = html.unescape(re.sub(r"<[^>]+>", "", front))
    wanted = [f"{profile['profile']} profile", "Commit", "torch", "Hardware", "wall time (min)"]
    if "claims" in report_names(profile):
        wanted.append("Claims of Sec. 5.1")
    problems += [f"front page lacks {w!r}" for w in wanted if w not in plain]
    if "System Message" in front or "system-message" in front:
        problems.append("front page has a reStructuredText error (docutils 'System Message')")
    n_runs = len(list(profiles.runs(profile)))
    if f"{n_runs} training runs" not in plain:
        problems.append(f"front page does not list the profile's {n_runs} training runs")
    return problems


# ------------------------------------------------------------------------------------------- command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", default=None, metavar="REPORT_HTML",
                        help="check a built report (snakemake --report ...html) holds every table, "
                             "figure, the claims and the runs, each with its caption; exit 1 if not")
    parser.add_argument("--page", default=None,
                        help="render one Markdown table (table1, ..., claims) as HTML; "
                             "default: the captions, runs table and front page")
    add_profile_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        profile = load(args)
        if args.check:
            problems = check_report(profile, args.check)
            for p in problems:
                print(f"report {args.check}: {p}", file=sys.stderr)
            if problems:
                return 1
            print(f"{args.check}: every table, figure, the claims and the runs are there, each with its caption")
            return 0
        if args.page:
            path = write_table_page(profile, args.page, args.root)
        else:
            path = write_pages(profile, args.root)
    except (profiles.ProfileError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"python -m mat report-pages: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0
