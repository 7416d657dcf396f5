"""Every smoke run of a profile, each in its own subprocess (mat.smoke.worker): an exception, an
out-of-memory or a process the kernel kills ends that run only; the others still run and report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from mat.smoke.plan import SmokeRun


def _slug(run: SmokeRun) -> str:
    return f"{run.experiment}/{run.method}/seed{run.seed}"


def _env() -> dict:
    """The parent's environment, with the `mat` package the parent imported first on the path
    (a relative PYTHONPATH would not survive another working directory)."""
    import mat

    env = os.environ.copy()
    src = str(Path(mat.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_one(run: SmokeRun, root: Path, timeout: float | None = None, keep: bool = False,
            command: list[str] | None = None) -> dict:
    """Run one smoke run in a subprocess; return its result (status ok / out of memory / error)."""
    folder = root / "runs" / _slug(run)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    config, result_path, log_path = folder / "config.json", folder / "result.json", folder / "worker.log"
    config.write_text(json.dumps(run.config, indent=1))
    cmd = command or [sys.executable, "-m", "mat.smoke.worker"]
    cmd = cmd + ["--config", str(config), "--out", str(folder / "run"), "--result", str(result_path)]
    if run.pad_vocab:
        cmd += ["--pad-vocab", str(run.pad_vocab)]
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, env=_env())
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
    wall = time.perf_counter() - t0
    result: dict
    if result_path.is_file():
        result = json.loads(result_path.read_text())
    elif code is None:
        result = {"status": "error", "message": f"timed out after {timeout:.0f} s (--timeout)"}
    elif code < 0 and -code == signal.SIGKILL:
        result = {"status": "out of memory",
                  "message": "the process was killed (SIGKILL), most likely by the kernel's out-of-memory killer"}
    else:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        result = {"status": "error", "message": f"exit status {code}: {tail[0][:300]}"}
    result["wall_seconds"] = wall
    result["log"] = str(log_path)
    if not keep:  # checkpoints of paper-size models are GBs; the log and result stay
        shutil.rmtree(folder / "run", ignore_errors=True)
    return result


def run_all(runs: list[SmokeRun], root: Path, timeout: float | None = None, keep: bool = False,
            say: Callable[[str], None] = lambda line: None, command: list[str] | None = None,
            on_result: Callable[[list[SmokeRun], list[dict]], None] | None = None) -> list[dict]:
    """Every run in turn; `on_result(runs so far, their results)` after each."""
    results = []
    for i, run in enumerate(runs, 1):
        say(f"[{i}/{len(runs)}] {_slug(run)} ({run.data})")
        result = run_one(run, root, timeout, keep, command)
        say(f"    {result['status']}{': ' + result['message'] if result.get('message') else ''} "
            f"({result['wall_seconds']:.0f} s)")
        results.append(result)
        if on_result is not None:
            on_result(runs[:i], results)
    return results
