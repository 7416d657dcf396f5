# One training run per (experiment, method, seed). Final outputs (every file the run publishes,
# model.pt included) appear only at the end; resume state lives in the run folder's .work/ (not a
# declared output), so an interrupted run resumes.


rule train:
    input:
        data=experiment_dataset,
    output:
        summary=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/{run_folder.SUMMARY}",
        metrics=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/{run_folder.METRICS}",
        mntk=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/{run_folder.MNTK}",
        modules=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/{run_folder.MODULES}",
        model=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/{run_folder.MODEL}",
    params:
        fingerprint=run_fingerprint,
        profile=PROFILE,
        dir=output_dir,
        config=run_config_file,
        launch=train_launch,
    log:
        f"logs/{PROFILE}/train/{{experiment}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{experiment}}/{{method}}/seed{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=train_gpu_resource,
    conda:
        "../../environment.yml"
    # Snakemake reruns this job only when it must be redone (e.g. its config changed), so resume
    # state left by an interrupted run of another config is discarded (logged): --discard-stale.
    shell:
        "python -m mat config write --profile {params.profile:q} --experiment {wildcards.experiment:q}"
        " --method {wildcards.method:q} --seed {wildcards.seed:q} --out {params.config:q}"
        " && OMP_NUM_THREADS={threads} {params.launch} --config {params.config:q}"
        " --out {params.dir:q} --discard-stale > {log:q} 2>&1"


rule experiment:
    """All runs of one experiment (the unit a DVC training stage asks for)."""
    input:
        experiment_runs,
    output:
        touch(f"{RESULTS}/runs/{{experiment}}/{run_folder.EXPERIMENT_DONE}"),
