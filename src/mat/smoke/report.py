"""results/<profile>/smoke.{csv,md}: one row per smoke run, the full run's projected wall time, and
the projected total per table (every method x every seed of the experiment).

Projected wall time of a full run = steps x step time (median over the smoke steps after the first)
+ evaluations x batches per evaluation x time per evaluation batch + measurement epochs x mNTK time
(scaled by S_full / S_smoke when ntk.samples was reduced: the per-sample gradients dominate)
+ checkpoints x checkpoint time; a reduced batch size (train.batch_size, train.eval_batch_size)
scales its step or evaluation batch time by full / smoke, linearly. Data loading and model building are not in it.
"""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path

from mat.atomic import write_atomic
from mat.smoke.plan import SmokeRun, config_value, full_schedule, seeds_of

COLUMNS = (
    "experiment", "method", "seed", "status", "message", "device", "data", "params", "steps",
    "step_seconds", "peak_memory_gb", "memory_kind", "mntk", "mntk_seconds", "mntk_peak_gb",
    "eval_seconds", "eval_batches", "checkpoint_seconds", "full_steps", "full_evaluations",
    "full_measurements", "projected_hours", "reduced", "wall_seconds",
)
GB = 1e9


def _median_after_first(steps: list[float]) -> float:
    rest = steps[1:] or steps
    return statistics.median(rest)


def _scale(run: SmokeRun, key: str) -> float:
    """full / smoke value of a size the smoke reduced (ntk.samples, a batch size), else 1: the time
    it drives is taken as linear in it (per-sample gradients, per-example work)."""
    full, smoke = config_value(run.full, key), config_value(run.config, key)
    return full / smoke if (full and smoke and full != smoke) else 1.0


def row(run: SmokeRun, result: dict) -> dict:
    """One CSV row: what was measured and, for a run that finished, the projection."""
    out = {"experiment": run.experiment, "method": run.method, "seed": run.seed,
           "status": result["status"], "message": result.get("message", ""), "data": run.data,
           "steps": run.config["train"]["max_steps"], "reduced": "; ".join(run.reduced),
           "wall_seconds": round(result.get("wall_seconds", 0.0), 1)}
    if result["status"] != "ok":
        return {c: out.get(c, "") for c in COLUMNS}
    meas = result.get("measurements", [])
    step = _median_after_first(result["step_seconds"])
    mntk_s = float(sum(m["seconds"] for m in meas))
    what = sorted({f"{m['purpose']} {m['key']}" for m in meas})
    real = not run.data.startswith("stand-in")  # the profile's own data: its loaded sizes
    sched = full_schedule(run.full, result["n_train"] if real else None, result["eval_sizes"] if real else None)
    per_batch = result["eval_seconds"] / max(result["eval_batches"], 1)
    projected = (sched.steps * step * _scale(run, "train.batch_size")
                 + sched.evaluations * sched.eval_batches * per_batch * _scale(run, "train.eval_batch_size")
                 + sched.measurements * mntk_s * _scale(run, "ntk.samples")
                 + sched.checkpoints * result["checkpoint_seconds"])
    out.update(
        device=result["device"], params=result["params"], step_seconds=round(step, 4),
        peak_memory_gb=round(result["peak_bytes"] / GB, 3), memory_kind=result["peak_kind"],
        mntk=", ".join(what) if what else "none", mntk_seconds=round(mntk_s, 3),
        mntk_peak_gb=round(max((m["peak_bytes"] for m in meas), default=0) / GB, 3),
        eval_seconds=round(result["eval_seconds"], 3), eval_batches=result["eval_batches"],
        checkpoint_seconds=round(result["checkpoint_seconds"], 3), full_steps=sched.steps,
        full_evaluations=sched.evaluations, full_measurements=sched.measurements,
        projected_hours=float(f"{projected / 3600:.4g}"),  # 4 significant digits: a tiny run projects to seconds
    )
    return {c: out.get(c, "") for c in COLUMNS}


OPTIONAL = ("message", "reduced")  # empty when the run is ok and nothing was reduced


def problems(rows: list[dict]) -> list[str]:
    """What keeps a smoke table from being a pass: a run not ok, or an ok run with an empty column."""
    out = []
    for r in rows:
        name = f"{r['experiment']}/{r['method']}"
        if r["status"] != "ok":
            out.append(f"{name}: {r['status']}: {r['message']}")
            continue
        empty = [c for c in COLUMNS if c not in OPTIONAL and r[c] in ("", None)]
        if empty:
            out.append(f"{name}: empty column(s) {', '.join(empty)}")
    return out


def totals(profile: dict, runs: list[SmokeRun], rows: list[dict]) -> list[dict]:
    """Per experiment: runs of the full profile (methods x seeds) and their projected hours
    (None when a smoke run of it did not finish)."""
    out = []
    for exp in dict.fromkeys(r.experiment for r in runs):
        mine = [row for run, row in zip(runs, rows) if run.experiment == exp]
        seeds = len(seeds_of(profile, exp))
        done = all(r["status"] == "ok" for r in mine)
        hours = sum(float(r["projected_hours"]) for r in mine) * seeds if done else None
        out.append({"experiment": exp, "runs": len(mine) * seeds, "projected_hours": hours,
                    "failed": sum(r["status"] != "ok" for r in mine)})
    return out


def write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue())


INTEGERS = ("seed", "params", "steps", "eval_batches", "full_steps", "full_evaluations", "full_measurements")
FLOATS = ("step_seconds", "peak_memory_gb", "mntk_seconds", "mntk_peak_gb", "eval_seconds", "checkpoint_seconds",
          "projected_hours", "wall_seconds")


def key(run_or_row: SmokeRun | dict) -> tuple[str, str, str, str, str]:
    """What makes a row stand for a run: experiment, method, seed, steps and reductions."""
    if isinstance(run_or_row, SmokeRun):
        r = run_or_row
        return r.experiment, r.method, str(r.seed), str(r.config["train"]["max_steps"]), "; ".join(r.reduced)
    r = run_or_row
    return r["experiment"], r["method"], str(r["seed"]), str(r["steps"]), r["reduced"]


def matching_rows(path: Path, runs: list[SmokeRun]) -> dict[tuple, dict]:
    """The rows of an existing table (`path`, if any) that stand for one of `runs`, by `key`, ok or
    not (a failure stays in the table until its run is done again), with their numbers read back
    as numbers."""
    if not path.is_file():
        return {}
    wanted = {key(r) for r in runs}
    out = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            if key(r) not in wanted or set(r) != set(COLUMNS):
                continue
            for c in INTEGERS:
                r[c] = int(r[c]) if r[c] != "" else ""
            for c in FLOATS:
                r[c] = float(r[c]) if r[c] != "" else ""
            out[key(r)] = r
    return out


def reductions(runs: list[SmokeRun]) -> str:
    """Every reduction of `runs`, each followed by the experiments it applies to when not all of them
    (e.g. "ntk.samples 64->4 (all but spectrum); ntk.samples 256->4 (spectrum); train.batch_size 8->4
    (table7_large)")."""
    experiments = list(dict.fromkeys(r.experiment for r in runs))
    where: dict[str, list[str]] = {}
    for r in runs:
        for x in r.reduced:
            if r.experiment not in where.setdefault(x, []):
                where[x].append(r.experiment)

    def scope(exps: list[str]) -> str:
        if exps == experiments:
            return ""
        others = [e for e in experiments if e not in exps]
        return f" ({'all but ' + ', '.join(others) if len(others) < len(exps) else ', '.join(exps)})"

    return "; ".join(x + scope(where[x]) for x in sorted(where))


def _fmt(v, digits=2) -> str:
    if v in ("", None):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(profile: dict, runs: list[SmokeRun], rows: list[dict], header: list[str]) -> str:
    lines = [f"# Smoke run of profile `{profile['profile']}`", ""] + [f"- {h}" for h in header] + [""]
    lines += ["| experiment | method | status | device | params | step s | peak GB | mNTK s | mNTK peak GB | eval s (batches) | projected h |",
              "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['message']}"
        params = f"{int(r['params']) / 1e6:.1f}M" if r["params"] != "" else "-"
        ev = f"{_fmt(r['eval_seconds'])} ({r['eval_batches']})" if r["eval_seconds"] != "" else "-"
        lines.append(f"| {r['experiment']} | {r['method']} | {status} | {r['device'] or '-'} | {params} | "
                     f"{_fmt(r['step_seconds'], 3)} | {_fmt(r['peak_memory_gb'])} | {_fmt(r['mntk_seconds'])} | "
                     f"{_fmt(r['mntk_peak_gb'])} | {ev} | {_fmt(r['projected_hours'], 1)} |")
    tot = totals(profile, runs, rows)
    lines += ["", "Projected wall time on this device of the full runs these smoke runs stand for, per table "
              "(each smoke-tested method x every seed of the experiment, one after another):", "",
              "| experiment | full runs | projected hours |", "| --- | ---: | ---: |"]
    for t in tot:
        h = "-" if t["projected_hours"] is None else f"{t['projected_hours']:.1f}"
        lines.append(f"| {t['experiment']} | {t['runs']} | {h}{' (' + str(t['failed']) + ' smoke run(s) failed)' if t['failed'] else ''} |")
    if all(t["projected_hours"] is not None for t in tot):
        total = sum(t["projected_hours"] for t in tot)
        lines.append(f"| **all** | {sum(t['runs'] for t in tot)} | **{total:.1f}** |")
    data = sorted({r["data"] for r in rows})
    lines += ["", "Data used: " + "; ".join(data) + "."]
    lines += ["", "Projected = steps x step time (median after the first) + evaluations x batches x time per batch"
              " + measurement epochs x mNTK time (x S_full/S_smoke if S was reduced) + checkpoints x checkpoint time"
              " (a reduced batch size scales its step or evaluation batch time by full/smoke);"
              " data preparation and model building are not included."]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, text: str) -> None:
    write_atomic(path, text)
