# Smoke run of the profile (mat.smoke): every experiment x method, one seed, a few steps at the
# profile's real sizes, forcing one mNTK measurement, one evaluation, one checkpoint and a resume.
#   snakemake --cores all --config profile=paper smoke=true
#   snakemake --cores all --config profile=paper smoke=true smoke_options="--samples 8 --resume"
# smoke_options: more options of `python -m mat smoke` (reductions, --resume), each word quoted.
# With smoke=true the default target is the smoke table only (nothing is trained for real). Its
# outputs live beside the tables but in their own files and folder (results/<profile>/smoke*),
# which no table or figure reads.


rule smoke:
    output:
        csv=f"{RESULTS}/smoke.csv",
        md=f"{RESULTS}/smoke.md",
    params:
        profile=PROFILE,
        steps=config.get("smoke_steps", 3),
        out=lambda wildcards, output: str(Path(output.csv).with_suffix("")),
        options=" ".join(shlex.quote(word) for word in shlex.split(str(config.get("smoke_options", "")))),
    log:
        f"logs/{PROFILE}/smoke.log",
    threads: 64  # all it may have: Snakemake lowers it to --cores (workflow.cores breaks --report, which sets none)
    conda:
        "../../environment.yml"
    # exit status 1 (some run failed) still writes both files: the table says which run and why
    shell:
        "python -m mat smoke --profile {params.profile:q} --steps {params.steps} --out {params.out:q}"
        " --csv {output.csv:q} {params.options} > {log:q} 2>&1 || test -s {output.md:q}"


SMOKE = str(config.get("smoke", False)).lower() == "true"  # --config smoke=true arrives as a string


if SMOKE:

    rule smoke_all:
        """The default target when smoke=true: the smoke table only."""
        input:
            rules.smoke.output,
        default_target: True
