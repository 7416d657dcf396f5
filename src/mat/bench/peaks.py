"""Dense peak TFLOP/s of the GPUs the benchmarks know, for MFU (PaLM, Chowdhery et al. 2022, App. B).

NVIDIA's datasheets; the sparse figures there are twice these. Keys are matched as substrings of
torch.cuda.get_device_name(); PCIe and NVL variants of H100/H200 have lower peaks and are not in
the table: pass the peak explicitly for them (and for any other device). A CPU has no entry: there
is no honest table of CPU peaks.
"""

from __future__ import annotations

import torch

PEAK_TFLOPS = {
    "H200": {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0},  # H200 SXM
    "H100": {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0},  # H100 SXM
    "A100": {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5},  # SXM and PCIe alike
}
NOT_IN_TABLE = ("PCIe", "NVL")
H200_BF16 = PEAK_TFLOPS["H200"]["bf16"]


def matmul_precision(precision: str) -> str:
    """What the matmuls run in: bf16, tf32 or fp32 (torch's float32 matmul precision decides)."""
    if precision == "bf16":
        return "bf16"
    return "fp32" if torch.get_float32_matmul_precision() == "highest" else "tf32"


def peak_tflops(device: torch.device, precision: str, given: float | None) -> tuple[float | None, str]:
    """(peak TFLOP/s, where it came from); (None, reason) when unknown."""
    if given is not None:
        return given, "--peak-tflops"
    if device.type != "cuda":
        return None, "none: CPU (give --peak-tflops)"
    name, kind = torch.cuda.get_device_name(device), matmul_precision(precision)
    if not any(s in name for s in NOT_IN_TABLE):
        for key, peaks in PEAK_TFLOPS.items():
            if key in name:
                return peaks[kind], f"table: {key} {kind} dense"
    return None, f"none: {name!r} not in the table (give --peak-tflops)"
