"""Where a number was made: the code's git commit, the library versions and the hardware.

Recorded in every run's summary.json (`mat.run_folder.PROVENANCE_KEYS`: left out when two runs are
compared) and in the benchmarks' CSV rows, so a measurement always names its machine.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch


def git_commit() -> str | None:
    """The commit of the code that ran, "-dirty" appended when tracked files were edited (None
    outside a git checkout)."""
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; the platform's processor name elsewhere)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def hardware(device: torch.device) -> dict:
    """The machine a run used: its device, CPU model and count, GPU name (None on CPU)."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": str(device), "cpu": cpu_name(), "cpu_count": os.cpu_count(), "gpu": gpu}


def device_name(device: torch.device) -> str:
    """One line naming the hardware of a measurement: the GPU, or the CPU model and its cores."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} logical cores; CPU, no GPU)"


def versions() -> dict:
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
