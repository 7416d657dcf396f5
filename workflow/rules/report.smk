# Tables, figures and the claims check, each made by one rule from the finished runs.


rule table:
    input:
        runs=experiment_runs_of_table,
    output:
        csv=f"{RESULTS}/{{table}}.csv",
        md=f"{RESULTS}/{{table}}.md",
    wildcard_constraints:
        table="table[0-9]+",
    params:
        profile=PROFILE,
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
        png=f"{FIGURES}/{{figure}}.png",
        pdf=f"{FIGURES}/{{figure}}.pdf",
        csv=f"{FIGURES}/{{figure}}.csv",
    params:
        profile=PROFILE,
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
        csv=f"{RESULTS}/claims.csv",
    params:
        profile=PROFILE,
    log:
        f"logs/{PROFILE}/claims.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m mat claims --profile {params.profile} > {log} 2>&1"
