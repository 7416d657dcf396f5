"""Peak memory of this process, for measurements that run in a process of their own (the smoke
runs, the memory benchmarks): on GPU `torch.cuda.max_memory_allocated`; on CPU the resident-set
high-water mark (Linux `VmHWM`), which `reset()` brings back to the current resident set through
/proc/self/clear_refs, so the peak of one piece of code can be read apart from what came before;
elsewhere `ru_maxrss`, which cannot be reset."""

from __future__ import annotations

import resource
from pathlib import Path

import torch


def _status(field: str) -> int | None:
    """A memory field of /proc/self/status in bytes (`VmRSS`, `VmHWM`); None without /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    """This process's current resident set (0 where /proc is not available)."""
    return _status("VmRSS") or 0


class Peak:
    """Peak memory of this process: CUDA allocated bytes on GPU, RSS high-water mark on CPU.
    Made, it resets the high-water mark; `overall` keeps the largest peak read across resets."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.overall = 0
        self.resettable = False
        if not self.cuda:
            try:
                with open("/proc/self/clear_refs", "w") as fh:
                    fh.write("5")  # reset the RSS high-water mark (Linux)
                self.resettable = True
            except OSError:
                pass

    def now(self) -> int:
        if self.cuda:
            return int(torch.cuda.max_memory_allocated())
        hwm = _status("VmHWM")
        return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def reset(self) -> None:
        self.overall = max(self.overall, self.now())
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        elif self.resettable:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")

    def read(self) -> int:
        value = self.now()
        self.overall = max(self.overall, value)
        return value
