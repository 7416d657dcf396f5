# Table 6's measurement (Appendix B.3): the full vs the modular NTK timed on this machine as S, m and
# L grow (src/mat/complexity/). Its own job, with its own resources: no training runs; rerun when
# the profile's resolved `complexity:` block changes (params.fingerprint). Table 6 is a view of it.
rule complexity:
    output:
        csv=f"{RESULTS}/complexity/measurements.csv",
        sweep=f"{RESULTS}/complexity/sweep.json",
    params:
        profile=PROFILE,
        fingerprint=complexity_fingerprint(),
    log:
        f"logs/{PROFILE}/complexity.log",
    benchmark:
        f"{RESULTS}/benchmarks/complexity.tsv"
    # complexity.threads torch threads while timing (0: as many as the job gets)
    threads: SWEEP.threads or 64  # unset: all it may have (Snakemake lowers it to --cores; workflow.cores breaks --report)
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0 if SWEEP.device == "cpu" else 1,
    conda:
        "../../environment.yml"
    shell:
        "python -m mat complexity --profile {params.profile:q} > {log:q} 2>&1"
