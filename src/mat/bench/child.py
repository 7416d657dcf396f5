"""A measurement in a process of its own, so that its peak memory is its own: the benchmark runs
itself again with `--child` and the measurement's options, and the child prints one JSON object
as its last line of output."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run(script: str, *options: str, threads: int | None = None) -> dict:
    """`python SCRIPT --child OPTIONS...` in a fresh process (OMP_NUM_THREADS=threads when given);
    the object its last stdout line holds. A failing child raises with its stderr."""
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    out = subprocess.run([sys.executable, script, "--child", *options], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{script} --child {' '.join(options)}: exit status {out.returncode}\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(result: dict) -> None:
    """The child's answer: one JSON line on stdout."""
    print(json.dumps(result), flush=True)


def add_arguments(parser, *hidden: str) -> None:
    """`--child` and the measurement's own options (`hidden`, e.g. "--s"), kept out of --help."""
    import argparse

    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in hidden:
        parser.add_argument(name, help=argparse.SUPPRESS)


def machine_columns(device: str, threads: int) -> dict:
    """The columns naming where a row was measured: threads, device, CPU, GPU and torch."""
    import torch

    from mat.provenance import hardware

    hw = hardware(torch.device(device))
    return {"threads": threads, "device": device, "cpu": hw["cpu"], "gpu": hw["gpu"] or "", "torch": torch.__version__}
