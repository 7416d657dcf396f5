# Tables, figures and the claims check, each made by one rule from the finished runs (and Table 6
# from the complexity measurement); which files each reads comes from the target registry,
# src/mat/report/targets.py, as does the fingerprint of the `report:` keys it reads. Every result
# is flagged for Snakemake's HTML report (`snakemake --report results/<profile>/report.html`),
# grouped by the paper's sections, each with a caption (workflow/report/*.rst includes the caption
# that `python -m mat report-pages` writes from src/mat/report/report_pages.py).
from mat.report.report_pages import (
    benchmark_csvs,
    captions_fingerprint,
    report_names,
    report_section,
    report_targets,
    report_title,
    result_labels,
    section,
    title,
)

REPORT = f"{RESULTS}/report"
# Benchmarks committed under benchmarks/results/ (made by benchmarks/*.py, not by this DAG).
BENCHMARK_CSVS = benchmark_csvs()


rule table:
    input:
        runs=experiment_runs_of_table,
    output:
        csv=report(f"{RESULTS}/{{table}}.csv", caption="../report/result.rst", category=report_section,
                   subcategory=report_title, labels=result_labels("table as CSV")),
        md=f"{RESULTS}/{{table}}.md",
    wildcard_constraints:
        table="table[0-9]+",
    params:
        profile=PROFILE,
        fingerprint=report_fingerprint,
    log:
        f"logs/{PROFILE}/tables/{{table}}.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m mat table {wildcards.table} --profile {params.profile} > {log} 2>&1"


rule figure:
    input:
        runs=figure_inputs,
    output:
        png=report(f"{FIGURES}/{{figure}}.png", caption="../report/result.rst", category=report_section,
                   subcategory=report_title, labels=result_labels("figure (PNG)")),
        pdf=report(f"{FIGURES}/{{figure}}.pdf", caption="../report/result.rst", category=report_section,
                   subcategory=report_title, labels=result_labels("figure (PDF)")),
        csv=report(f"{FIGURES}/{{figure}}.csv", caption="../report/result.rst", category=report_section,
                   subcategory=report_title, labels=result_labels("plotted data (CSV)")),
    params:
        profile=PROFILE,
        fingerprint=report_fingerprint,
    log:
        f"logs/{PROFILE}/figures/{{figure}}.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m mat figure {wildcards.figure} --profile {params.profile} > {log} 2>&1"


rule claims:
    input:
        [f"{RESULTS}/{t}.csv" for t in TABLES],
    output:
        md=f"{RESULTS}/claims.md",
        csv=report(f"{RESULTS}/claims.csv", caption="../report/claims.rst", category=section("claims"),
                   subcategory=title("claims"), labels={"result": title("claims"), "file": "table as CSV"}),
    params:
        profile=PROFILE,
    log:
        f"logs/{PROFILE}/claims.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m mat claims --profile {params.profile} > {log} 2>&1"


rule report_page:
    """A Markdown table (or the claims check) as an HTML page, so the report shows it."""
    input:
        f"{RESULTS}/{{page}}.md",
    output:
        report(f"{REPORT}/{{page}}.html", caption="../report/result.rst", category=report_section,
               subcategory=report_title, labels=result_labels("table")),
    wildcard_constraints:
        page="table[0-9]+|claims",
    params:
        profile=PROFILE,
    log:
        f"logs/{PROFILE}/report/{{page}}.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m mat report-pages --profile {params.profile} --page {wildcards.page} > {log} 2>&1"


rule report_front:
    """The report's front page and runs table (from every run's summary.json) and every caption."""
    input:
        summaries=[f"{r.dir}/{run_folder.SUMMARY}" for r in RUNS],
        claims=[f"{RESULTS}/claims.csv"] if TABLES else [],
        benchmarks=[report(f, caption="../report/benchmarks.rst", category="6 Benchmarks",
                           subcategory=Path(f).stem, labels={"result": Path(f).stem, "file": "table as CSV"})
                    for f in BENCHMARK_CSVS],
    output:
        captions=[f"{REPORT}/captions/{n}.rst" for n in report_names(PROF)],
        front=f"{REPORT}/front.rst",
        benchmarks=[report(f"{REPORT}/benchmarks/{Path(f).stem}.html", caption="../report/benchmarks.rst",
                           category="6 Benchmarks", subcategory=Path(f).stem,
                           labels={"result": Path(f).stem, "file": "table"})
                    for f in BENCHMARK_CSVS],
        runs_csv=report(f"{REPORT}/runs.csv", caption="../report/runs.rst", category=section("runs"),
                        subcategory=title("runs"), labels={"result": title("runs"), "file": "table as CSV"}),
        runs_html=report(f"{REPORT}/runs.html", caption="../report/runs.rst", category=section("runs"),
                         subcategory=title("runs"), labels={"result": title("runs"), "file": "table"}),
    params:
        profile=PROFILE,
        fingerprint=captions_fingerprint(PROF),  # the captions quote the report blocks
    log:
        f"logs/{PROFILE}/report/front.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m mat report-pages --profile {params.profile} > {log} 2>&1"
