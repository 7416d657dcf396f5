"""The HTML report's pages (mat.report.report_pages): captions, the Markdown tables as HTML, the runs
table and front page from summary.json, and the check of a built report."""

import html
import json
import re
from pathlib import Path

import pytest
from docutils.core import publish_parts

from mat import profiles
from mat.report import report_pages as rp
from mat.report.targets import TARGETS

ROOT = Path(__file__).resolve().parents[1]


def _rst_to_html(text: str) -> str:
    """Render as Snakemake does; fail on any docutils warning instead of printing it in the page."""
    return publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 5})["body"]


@pytest.fixture
def tiny():
    return profiles.load_profile("tiny", ROOT / "config/profiles")


@pytest.mark.parametrize("profile_name", ["tiny", "small", "paper"])
def test_every_result_has_a_caption_saying_counterpart_profile_and_differences(profile_name):
    profile = profiles.load_profile(profile_name, ROOT / "config/profiles")
    names = rp.report_names(profile)
    assert {"table1", "table2", "table3", "claims", "runs"} <= set(names)
    for name in names:
        text = rp.caption(profile, name)
        body = html.unescape(re.sub(r"<[^>]+>", "", _rst_to_html(text)))
        assert "Paper's counterpart" in body and "Where we differ" in body, name
        assert f"Profile: {profile_name}" in body, name
        assert rp.section(name) and rp.title(name)


def test_every_registered_target_describes_its_page():
    """A target's caption comes from its registry entry: what the paper shows and how ours differs."""
    for name, t in TARGETS.items():
        assert t.paper and t.differs, f"{name}: give its entry `paper` and `differs` in src/mat/report/targets.py"
        assert rp.page(name).paper == t.paper and rp.page(name).differs == t.differs
    sections = {n: rp.section(n) for n in ("table1", "table6", "fig1b", "fig5", "claims", "runs")}
    assert sections == {"table1": rp.MAIN, "table6": rp.APPENDIX, "fig1b": rp.FIGURES, "fig5": rp.FIGURES,
                        "claims": rp.CLAIMS, "runs": rp.RUNS}


def test_caption_names_the_profile_seeds_and_its_own_numbers(tiny):
    text = rp.caption(tiny, "table3")
    assert "seeds 0, 1" in text and "80%, 90%" in text
    assert "0.348, 0.523, 0.697" in rp.caption(tiny, "table1")
    assert rp.caption(tiny, "fig2").startswith("**Figure 2** -- layer-wise")  # not "Figure 2 -- Figure 2:"


def test_markdown_table_becomes_an_html_table():
    md = (ROOT / "results/tiny/table1.md").read_text()
    page = rp.markdown_to_html(md, "Table 1")
    assert page.count("<tr>") == 1 + 4  # header + BERT, BERT-Rand, Multirate, MAT
    assert "<h3>Table 1:" in page and "<strong>" in page and '<td class="r">' in page
    assert "<code>flops_total_noemb</code>" in page
    claims = rp.markdown_to_html((ROOT / "results/tiny/claims.md").read_text(), "Claims")
    assert "<ul>" in claims and "<h2>Rules</h2>" in claims


def test_markdown_escapes_html():
    page = rp.markdown_to_html("a <b> & c\n\n| x |\n| --- |\n| <i> |\n", "t")
    assert "&lt;b&gt; &amp; c" in page and "&lt;i&gt;" in page


def _fake_runs(root: Path, profile: dict) -> None:
    for i, run in enumerate(profiles.runs(profile)):
        d = root / run.dir
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({
            "steps": 10, "epochs": 2, "stopped_early": {"stopped": False, "why": None}, "wall_seconds": 30.0 + i,
            "compute": {"flops_total_noemb": 2e11, "flops_mntk": 1e9},
            "hardware": {"device": "cpu", "cpu": "Test CPU", "cpu_count": 2, "gpu": None},
            "git_commit": "abc123", "versions": {"python": "3.11", "torch": "2.x", "transformers": "4.x"},
        }))


def test_pages_front_and_runs_from_summaries(tmp_path, tiny):
    _fake_runs(tmp_path, tiny)
    (tmp_path / "results/tiny").mkdir(parents=True, exist_ok=True)
    (tmp_path / "results/tiny/claims.csv").write_text(
        "id,verdict\na,holds\nb,inconclusive\nc,inconclusive\n")
    (tmp_path / "benchmarks/results").mkdir(parents=True)
    (tmp_path / "benchmarks/results/speed.csv").write_text("method,seconds\nloop,1.5\nfast,0.25\n")
    out = rp.write_pages(tiny, tmp_path)
    bench = (out / "benchmarks/speed.html").read_text()
    assert '<td class="r">0.25</td>' in bench and "<td>loop</td>" in bench
    n = len(list(profiles.runs(tiny)))
    assert sorted(p.name for p in (out / "captions").iterdir()) == sorted(f"{x}.rst" for x in rp.report_names(tiny))
    runs = (out / "runs.csv").read_text().splitlines()
    assert len(runs) == 1 + n and runs[0].startswith("experiment,method,seed")
    front = (out / "front.rst").read_text()
    # the front page links to report categories; Snakemake appends these targets when it renders
    targets = "".join(f"\n.. _{c}: javascript:void(0)" for c in (rp.CLAIMS, rp.RUNS))
    body = html.unescape(_rst_to_html(front + "\n" + targets))
    assert f"{n} training runs" in body and "abc123" in body and "Test CPU" in body
    assert "holds</strong> 1" in body and "inconclusive</strong> 2" in body
    assert "Table 7 (5 experiments)" in body and "Figure 3" in body  # runs summarised per paper result
    assert "<table" in (out / "runs.html").read_text()


def test_missing_run_is_a_clear_error(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match="summary.json"):
        rp.runs_rows(tiny, tmp_path)


def _report_html(results: dict, front: str) -> str:
    return ("<script>var results = new Array(3);</script>\n"
            f"    var workflow_desc = {json.dumps(front)};\n"
            f"    var results = {json.dumps(results)};\n")


def test_check_report_finds_what_is_missing(tmp_path, tiny):
    cap = "<p><strong>Paper's counterpart:</strong> x</p><p><strong>Profile:</strong> <tt>tiny</tt></p>" \
          "<p><strong>Where we differ from the paper:</strong></p>"
    expected = rp.expected_results(tiny)
    assert "paper_figures/tiny/fig4.png" in expected and "results/tiny/report/claims.html" in expected
    results = {p: {"caption": cap, "data_uri": "data:x"} for p in expected}
    n = len(list(profiles.runs(tiny)))
    front = ("<h1>MAT reproduction, tiny profile</h1> Commit torch Hardware wall time (min) "
             f"Claims of Sec. 5.1 {n} training runs")
    path = tmp_path / "report.html"
    path.write_text(_report_html(results, front))
    assert rp.check_report(tiny, path) == []
    del results["paper_figures/tiny/fig4.png"]
    results["results/tiny/table1.csv"]["caption"] = "<p>no caption</p>"
    path.write_text(_report_html(results, front.replace("Commit", "")))
    problems = rp.check_report(tiny, path)
    assert any("fig4.png" in p and "not in the report" in p for p in problems)
    assert any("table1.csv" in p and "caption" in p for p in problems)
    assert any("'Commit'" in p for p in problems)
