"""Smoke runs: before a user spends GPU-days, every experiment x method of a profile runs for a
few steps at the profile's REAL sizes (model, batch, sequence length, mNTK samples and memory
budget), through the real trainer, forcing what a full run does only late: one mNTK measurement
the way the method uses it, one evaluation pass, one checkpoint and a resume from it.

    plan.py     the smoke run configs of a profile, their data (real or a generated stand-in)
                and the full run's schedule (steps, evaluations, mNTK measurements) to project from
    worker.py   one smoke run in its own process: the Trainer with timing hooks -> a result JSON
    runner.py   every run of a profile, one subprocess each (one failure or OOM does not stop the rest)
    report.py   results/<profile>/smoke.{csv,md}: measurements, projected wall time, totals per table

`python -m mat smoke --profile NAME` (mat.cli.smoke); Snakemake: `--config profile=NAME smoke=true`.
"""
