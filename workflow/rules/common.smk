# Helpers shared by the rules: the profile, its runs, and the paths they write.
import hashlib
import shlex
import sys
import os
from pathlib import Path
import json

from snakemake.exceptions import WorkflowError

from mat import profiles
from mat import run_folder

# Jobs find the interpreter Snakemake runs in first on their PATH (the project's .venv when
# started as .venv/bin/snakemake), so they work without an activated environment.
shell.prefix(f"set -euo pipefail; export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH; ")

from mat.complexity.sweep import SweepError, sweep_config
from mat.data import DataError
from mat.data import request as data_request

PROFILE = config["profile"]
try:
    PROF = profiles.load_profile(PROFILE)
    # Every run config is validated now, so `snakemake -n` fails at once on a bad key or value
    # (naming profile, experiment, method and key) instead of a train job failing in a log file.
    # (Models are not built here, to keep parsing fast; `mat config list` and every job do that.)
    profiles.check_runs(PROF, models=False)
except profiles.ProfileError as exc:
    raise WorkflowError(str(exc))
try:
    # What `mat data get` is asked for, per dataset: only known options, each value shell-quoted.
    REQUESTS = {
        ds: data_request.from_profile(f"profile {PROFILE!r}: datasets.{ds}", entry)
        for ds, entry in PROF["datasets"].items()
    }
except DataError as exc:
    raise WorkflowError(str(exc))

try:
    SWEEP = sweep_config(PROF)  # Table 6's measurement (workflow/rules/complexity.smk)
except SweepError as exc:
    raise WorkflowError(str(exc))

RUNS = list(profiles.runs(PROF))
RESULTS = f"results/{PROFILE}"
FIGURES = f"paper_figures/{PROFILE}"
RUN_FILES = (run_folder.SUMMARY, *run_folder.LOGS)  # what tables and figures read of a run


def run_dir(experiment, method, seed):
    return profiles.Run(PROFILE, experiment, method, int(seed)).dir


def dataset_input(ds):
    """The file standing for dataset `ds`: its `mat-data.json` (written last by `mat data get`),
    or, when the folder holds the dataset made with other options than the profile's, a rebuild
    marker that the `dataset_rebuild` rule makes by replacing the folder (so it is rebuilt, not
    reused, and every run reading it is redone)."""
    why = data_request.mismatch(f"data/{ds}", REQUESTS[ds])
    if why is None:
        return f"data/{ds}/mat-data.json"
    key = hashlib.sha256(why.encode()).hexdigest()[:12]
    return f"logs/data/{ds}.rebuilt-{key}"


def experiment_dataset(wildcards):
    """The dataset a run reads (see dataset_input)."""
    return dataset_input(PROF["experiments"][wildcards.experiment]["run"]["data"]["dataset"])


def run_fingerprint(wildcards):
    """Hash of the resolved run config: a changed number reruns exactly the affected runs."""
    cfg = profiles.run_config(PROF, wildcards.experiment, wildcards.method, int(wildcards.seed))
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def train_gpus(wildcards):
    """`train.gpus` of the run's config (default 1): how many data-parallel processes it needs."""
    cfg = profiles.run_config(PROF, wildcards.experiment, wildcards.method, int(wildcards.seed))
    return int(cfg.get("train", {}).get("gpus", 1))


def train_launch(wildcards):
    """The command that starts `mat train`: plain Python for one process, torchrun for N > 1
    (mat.train.distributed; the config's train.gpus must equal the processes started)."""
    n = train_gpus(wildcards)
    if n == 1:
        return "python -m mat train"
    return f"torchrun --standalone --nproc_per_node {n} -m mat train"


def train_gpu_resource(wildcards):
    """GPUs to reserve: N for a data-parallel run; 0 for a one-process run, which uses a GPU only
    if its device (auto) finds one, as before."""
    n = train_gpus(wildcards)
    return n if n > 1 else 0


def runs_of(experiment, files=(run_folder.SUMMARY,)):
    return [f"{r.dir}/{f}" for r in RUNS if r.experiment == experiment for f in files]


def experiment_runs(wildcards):
    return runs_of(wildcards.experiment, RUN_FILES)


def complexity_fingerprint():
    """Hash of Table 6's resolved sweep (the `complexity:` block over its defaults, and the mNTK
    memory budget it takes from defaults.ntk.memory_gb): a changed one remeasures."""
    return hashlib.sha256(json.dumps(SWEEP.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def dataset_args(wildcards):
    """`NAME [--seed N] [--size N,M] [--raw] [--source S]`, every value shell-quoted."""
    return REQUESTS[wildcards.dataset].cli_args()


from mat.report.targets import TARGETS, available, fingerprint

AVAILABLE = available(PROF["experiments"])
TABLES = [t.name for t in AVAILABLE if t.kind == "table"]
FIGS = [t.name for t in AVAILABLE if t.kind == "figure"]


def _target_runs(name):
    """The run files of a target's experiments, then the other files it reads (Table 6: the
    complexity measurement), all from the registry (mat.report.targets)."""
    runs = [f for e in TARGETS[name].experiments for f in runs_of(e, RUN_FILES)]
    return runs + TARGETS[name].input_files(PROFILE)


def _missing_runs_marker(name, files):
    """A marker touched now when some of the run files a table or figure reads are missing.
    Snakemake does not rebuild the missing inputs of a job whose output exists, so in a fresh
    clone (committed tables, no runs) `snakemake results/tiny/table3.csv` did nothing; the marker,
    newer than the committed table, makes the table stale, and its missing runs are trained first.
    The marker is always an input (a changing set of inputs would itself make the table stale on
    the next run); made while every run exists, it is dated 1970 so that it makes nothing stale.
    Markers are made when the workflow is parsed, before Snakemake looks for any input (made
    inside an input function, a new marker was not seen by a first, non-dry run)."""
    marker = Path(f".snakemake/mat-missing-runs/{PROFILE}/{name}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    if not all(Path(f).exists() for f in files):
        marker.touch()
    elif not marker.exists():
        marker.touch()
        os.utime(marker, (0, 0))
    return str(marker)


MISSING_RUNS_MARKERS = {t.name: _missing_runs_marker(t.name, _target_runs(t.name)) for t in AVAILABLE}


def _with_missing_runs_marker(name, files):
    return files + [MISSING_RUNS_MARKERS[name]]


def experiment_runs_of_table(wildcards):
    return _with_missing_runs_marker(wildcards.table, _target_runs(wildcards.table))


def figure_inputs(wildcards):
    return _with_missing_runs_marker(wildcards.figure, _target_runs(wildcards.figure))


def report_fingerprint(wildcards):
    """Hash of the profile keys the table or figure reads beyond its inputs (the `report:` keys
    it declares in the registry): editing one rebuilds exactly the targets that read it."""
    return fingerprint(PROF, TARGETS[wildcards.get("table") or wildcards.get("figure")])


def all_targets():
    # Every run is a target of its own: a fresh clone holds the committed tables but no runs, and
    # asking for the runs makes `snakemake --cores all` retrain them and rebuild what reads them.
    out = [f"{r.dir}/{run_folder.SUMMARY}" for r in RUNS]
    out += [f"{RESULTS}/{t}.{ext}" for t in TABLES for ext in ("csv", "md")]
    out += [f"{FIGURES}/{f}.png" for f in FIGS]
    if TABLES:
        out.append(f"{RESULTS}/claims.md")
    return out


def output_dir(wildcards, output):
    """The folder of a rule's first output."""
    return str(Path(output[0]).parent)


def run_config_file(wildcards, output):
    """The resolved config a training run is started from, in its run folder."""
    return f"{output_dir(wildcards, output)}/{run_folder.CONFIG}"
