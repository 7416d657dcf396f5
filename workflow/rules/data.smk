# Datasets: download + verify (real data) or generate (tiny profile). The folder appears atomically;
# `mat-data.json` inside it records every file's sha256.


rule dataset:
    output:
        "data/{dataset}/mat-data.json",
    params:
        name=dataset_name,
        options=dataset_options,
        out=output_dir,
    log:
        "logs/data/{dataset}.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m mat data get {params.name} --out {params.out} {params.options} > {log} 2>&1"


rule datasets:
    """Every dataset the profile uses (the DVC `data` stage asks for this)."""
    input:
        [f"data/{ds}/mat-data.json" for ds in PROF["datasets"]],
