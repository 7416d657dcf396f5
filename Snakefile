# The MAT reproduction's DAG: data -> training per (experiment, method, seed) -> tables -> figures.
#   snakemake --cores all                         # the default (tiny) profile, offline, minutes
#   snakemake --cores all --config profile=small  # one GPU, real data
# Every number lives in config/profiles/<profile>.yaml; rules live in workflow/rules/.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


# `snakemake --report results/<profile>/report.html` (after the pipeline): every table, figure and
# the claims check with its caption; this is its front page.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
        report_targets(PROF),
    default_target: True


include: "workflow/rules/smoke.smk"


if SMOKE:  # smoke=true: the smoke table is the default target instead of `all` (an include cannot set it)
    workflow.default_target = "smoke_all"
