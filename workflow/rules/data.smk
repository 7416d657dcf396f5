# Datasets: download + verify (real data) or generate (tiny profile). The folder appears atomically;
# `mat-data.json` inside it records every file's sha256 and the options it was made with. A folder
# made with other options than the profile's is rebuilt (`--replace`: built beside it, swapped in).
# Every value reaching the shell is quoted (`:q`, and mat.data.request quotes the arguments).


rule dataset:
    output:
        "data/{dataset}/mat-data.json",
    params:
        args=dataset_args,
        out=output_dir,
    log:
        "logs/data/{dataset}.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m mat data get {params.args} --out {params.out:q} --replace > {log:q} 2>&1"


rule dataset_rebuild:
    """The folder holds the dataset made with other options: rebuild it, leave a marker."""
    output:
        "logs/data/{dataset}.rebuilt-{key}",
    wildcard_constraints:
        key="[0-9a-f]{12}",
    params:
        args=dataset_args,
        out="data/{dataset}",
    log:
        "logs/data/{dataset}.rebuild-{key}.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m mat data get {params.args} --out {params.out:q} --replace > {log:q} 2>&1"
        " && touch {output:q}"


rule datasets:
    """Every dataset the profile uses (the DVC `data` stage asks for this)."""
    input:
        [dataset_input(ds) for ds in PROF["datasets"]],
