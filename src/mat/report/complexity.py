"""Table 6 (Appendix B.3) measured: what the full NTK and the modular NTKs cost as S, m and L grow.

The paper states the costs analytically: the integral NTK O(S m^2) vs the L modular NTKs
O(S m^2 / L); its eigendecomposition O((nk)^3) (with S samples: O(S^3)) vs L of them, O(L S^3).
Here they are measured on BERT models built by `mat.models.build_model`, heads as modules:

1. `jacobian`: the per-sample gradients of the sum of logits for the S inputs over the m parameters
   the head partition owns (`mat.ntk.per_sample_grads_hooks`); computed once per point and shared by
2. `full_gram`: Theta = J J^T from the concatenated S x m Jacobian (float32 product, float64 result,
   as `mat.ntk` accumulates);
3. `modular_grams`: Theta^l = J_l J_l^T for each of the L heads from the same Jacobian (Definition 1;
   `Partition.gather` picks each head's slices); their sum is Theta (Eq. 1);
4. `full_eig`: the eigenvalues of the one S x S Theta;
5. `modular_eig`: the eigenvalues of the L S x S Theta^l (`mat.ntk.eigenvalues`, batched as the
   trainer does);
6. `trainer_mntk`: for reference, the whole mNTK as the trainer computes it (`mat.ntk.module_ntk`:
   Jacobian, all heads' Grams by batched matmuls, eigenvalues) -- not split into stages 1-5.

Each stage: wall time (median of `repeats`, after one warm-up call) and peak tensor memory
(`TensorMemory`, exact bytes). Three one-variable sweeps around a base point: S (samples), m (via
the hidden size: m grows with hidden^2 at fixed layers and heads) and L (via the heads per layer at
fixed hidden: m stays the same). `fit_exponent` gives the log-log least-squares slope per stage and
variable. Sweep sizes come from the profile's `complexity` block (`sweep_config`).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from mat.report.runs import ReportInputError
from mat.report.tensor_memory import TensorMemory

STAGES = ("jacobian", "full_gram", "modular_grams", "full_eig", "modular_eig", "trainer_mntk")
VARIABLES = ("S", "m", "L")

# Defaults sized for a 2-core laptop CPU (the whole sweep in well under a minute).
DEFAULTS = {
    "samples": [16, 32, 64, 128],  # S sweep
    "hidden": [32, 64, 128],  # m sweep (hidden size; heads fixed at base.heads)
    "heads": [1, 2, 4, 8, 16],  # L sweep (heads per layer; hidden fixed at base.hidden)
    "base": {"samples": 32, "hidden": 64, "heads": 8},
    "layers": 2,
    "seq_len": 16,
    "vocab_size": 128,
    "repeats": 5,
    "chunk_size": 16,
    "threads": 1,  # torch threads while timing (steadier numbers on a shared machine); 0: leave as is
    "seed": 0,
    "device": "cpu",  # cpu | cuda | auto (cuda when available)
}


@dataclass(frozen=True)
class Sweep:
    samples: tuple[int, ...]
    hidden: tuple[int, ...]
    heads: tuple[int, ...]
    base_samples: int
    base_hidden: int
    base_heads: int
    layers: int
    seq_len: int
    vocab_size: int
    repeats: int
    chunk_size: int
    threads: int
    seed: int
    device: str

    def points(self) -> list[tuple[str, int, int, int]]:
        """(sweep variable, S, hidden, heads) of every measurement, base point in each sweep."""
        out = [("S", s, self.base_hidden, self.base_heads) for s in self.samples]
        out += [("m", self.base_samples, h, self.base_heads) for h in self.hidden]
        out += [("L", self.base_samples, self.base_hidden, n) for n in self.heads]
        return out


def _ints(where: str, value, minimum: int, single: bool = False):
    values = [value] if single else value
    if not isinstance(values, list) or not values or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values
    ):
        what = f"an integer >= {minimum}" if single else f"a non-empty list of integers >= {minimum}"
        raise ReportInputError(f"{where}: expected {what}, got {value!r}")
    return values[0] if single else tuple(sorted(set(values)))


def _device(where: str, value) -> str:
    if value not in ("cpu", "cuda", "auto"):
        raise ReportInputError(f"{where}: expected one of cpu, cuda, auto, got {value!r}")
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value == "cuda" and not torch.cuda.is_available():
        raise ReportInputError(f"{where}: 'cuda', but torch sees no CUDA device here")
    return value


def sweep_config(profile: dict) -> Sweep:
    """The profile's `complexity` block over DEFAULTS, checked (errors name the key)."""
    name = profile.get("profile", "?")
    given = profile.get("complexity") or {}
    if not isinstance(given, dict):
        raise ReportInputError(f"profile {name!r}, complexity: expected a mapping, got {given!r}")
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ReportInputError(f"profile {name!r}, complexity: unknown keys {unknown}; expected some of {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **given, "base": {**DEFAULTS["base"], **(given.get("base") or {})}}
    unknown = sorted(set(cfg["base"]) - set(DEFAULTS["base"]))
    if unknown:
        raise ReportInputError(f"profile {name!r}, complexity.base: unknown keys {unknown}; expected some of {sorted(DEFAULTS['base'])}")
    w = f"profile {name!r}, complexity"
    sweep = Sweep(
        samples=_ints(f"{w}.samples", cfg["samples"], 2), hidden=_ints(f"{w}.hidden", cfg["hidden"], 1),
        heads=_ints(f"{w}.heads", cfg["heads"], 1),
        base_samples=_ints(f"{w}.base.samples", cfg["base"]["samples"], 2, True),
        base_hidden=_ints(f"{w}.base.hidden", cfg["base"]["hidden"], 1, True),
        base_heads=_ints(f"{w}.base.heads", cfg["base"]["heads"], 1, True),
        layers=_ints(f"{w}.layers", cfg["layers"], 1, True), seq_len=_ints(f"{w}.seq_len", cfg["seq_len"], 1, True),
        vocab_size=_ints(f"{w}.vocab_size", cfg["vocab_size"], 2, True), repeats=_ints(f"{w}.repeats", cfg["repeats"], 1, True),
        chunk_size=_ints(f"{w}.chunk_size", cfg["chunk_size"], 1, True), threads=_ints(f"{w}.threads", cfg["threads"], 0, True),
        seed=_ints(f"{w}.seed", cfg["seed"], 0, True), device=_device(f"{w}.device", cfg["device"]),
    )
    for _, _, hidden, heads in sweep.points():
        if hidden % heads:
            raise ReportInputError(f"{w}: hidden {hidden} is not divisible by heads {heads} (BERT splits hidden into heads)")
    for var, n in (("samples", sweep.samples), ("hidden", sweep.hidden), ("heads", sweep.heads)):
        if len(n) < 2:
            raise ReportInputError(f"{w}.{var}: expected at least 2 distinct values to fit an exponent, got {list(n)}")
    return sweep


# ----------------------------------------------------------------------------- the stages
def full_gram(grads: dict[str, torch.Tensor]) -> torch.Tensor:
    """Theta = J J^T [S, S] float64 from per-sample gradients {name: [S, *shape]} (one S x m matrix)."""
    j = torch.cat([g.reshape(g.shape[0], -1) for g in grads.values()], dim=1)
    return (j @ j.T).double()


def modular_grams(grads: dict[str, torch.Tensor], partition) -> torch.Tensor:
    """Theta^l = J_l J_l^T for every module l [L, S, S] float64 (Definition 1), module by module."""
    out = []
    for i in range(len(partition)):
        j = partition.gather(grads, i, batch_dims=1)
        out.append((j @ j.T).double())
    return torch.stack(out)


def _timed(fn: Callable[[], object], repeats: int, device: str = "cpu") -> tuple[float, float, float]:
    """(median, min, max) seconds of `repeats` calls after one warm-up call (CUDA work waited for)."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def _peak(fn: Callable[[], object]) -> int:
    with TensorMemory() as mem:
        result = fn()
    del result
    return mem.peak


def measure_point(sweep: Sweep, s: int, hidden: int, heads: int) -> list[dict]:
    """Every stage at one (S, hidden, heads): seconds and peak bytes, plus m and L."""
    from mat.models import build_model, build_partition
    from mat.ntk import eigenvalues, module_ntk, per_sample_grads_hooks

    torch.manual_seed(sweep.seed)
    model = build_model({"arch": "bert", "layers": sweep.layers, "hidden": hidden, "heads": heads,
                         "intermediate": 2 * hidden, "max_len": sweep.seq_len, "vocab_size": sweep.vocab_size})
    model = model.to(sweep.device)
    part = build_partition(model, ["head"])
    params = dict(model.named_parameters())
    m, n_modules = int(part.sizes(params).sum()), len(part)
    gen = torch.Generator().manual_seed(sweep.seed)
    inputs = torch.randint(0, sweep.vocab_size, (s, sweep.seq_len), generator=gen).to(sweep.device)
    names = part.param_names

    def jac():
        return per_sample_grads_hooks(model, inputs, names, sweep.chunk_size)

    grads = jac()
    rows = []

    def record(stage: str, fn: Callable[[], object], memory: bool) -> None:
        med, lo, hi = _timed(fn, sweep.repeats, sweep.device)
        rows.append({"S": s, "hidden": hidden, "heads": heads, "layers": sweep.layers, "m": m, "L": n_modules,
                     "stage": stage, "seconds": med, "seconds_min": lo, "seconds_max": hi,
                     "repeats": sweep.repeats, "peak_bytes": _peak(fn) if memory else math.nan})

    # the Jacobian needs autograd, whose saved tensors TensorMemory cannot see: time only (also stage 6)
    record("jacobian", jac, memory=False)
    with torch.no_grad():
        g_full, g_mod = full_gram(grads), modular_grams(grads, part)
        record("full_gram", lambda: full_gram(grads), True)
        record("modular_grams", lambda: modular_grams(grads, part), True)
        record("full_eig", lambda: eigenvalues(g_full), True)
        record("modular_eig", lambda: eigenvalues(g_mod), True)
    record("trainer_mntk", lambda: module_ntk(model, inputs, part, sweep.chunk_size), memory=False)
    return rows


def run_sweep(sweep: Sweep, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """The raw measurements: one row per (sweep variable, point, stage)."""
    threads = torch.get_num_threads()
    if sweep.threads:
        torch.set_num_threads(sweep.threads)
    try:
        cache: dict[tuple[int, int, int], list[dict]] = {}
        rows = []
        for var, s, hidden, heads in sweep.points():
            key = (s, hidden, heads)
            if key not in cache:  # the base point belongs to all three sweeps; measured once
                if progress:
                    progress(f"S={s} hidden={hidden} heads={heads}")
                cache[key] = measure_point(sweep, s, hidden, heads)
            rows += [{"sweep": var, **r} for r in cache[key]]
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the fit
@dataclass(frozen=True)
class Fit:
    exponent: float  # slope of log(y) on log(x)
    intercept: float
    r2: float
    stderr: float  # standard error of the slope (NaN with 2 points)
    n: int


def fit_exponent(x, y) -> Fit:
    """Least-squares line through (log x, log y): y ~ exp(intercept) * x ** exponent."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"fit_exponent: need at least 2 (x, y) pairs of equal length, got {x.size} and {y.size}")
    if (x <= 0).any() or (y <= 0).any() or not np.isfinite(x).all() or not np.isfinite(y).all():
        raise ValueError("fit_exponent: x and y must be positive and finite (log-log fit)")
    if np.unique(x).size < 2:
        raise ValueError("fit_exponent: x takes a single value; no slope to fit")
    lx, ly = np.log(x), np.log(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + intercept)
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    # y constant (e.g. the memory of one S x S eigendecomposition as m grows): slope 0, no r^2
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 1e-12 * max(1.0, float((ly**2).sum())) else math.nan
    n = x.size
    stderr = math.sqrt(float((resid**2).sum()) / (n - 2) / float(((lx - lx.mean()) ** 2).sum())) if n > 2 else math.nan
    return Fit(float(slope), float(intercept), r2, stderr, n)


def fits(raw: pd.DataFrame, value: str = "seconds") -> pd.DataFrame:
    """One fitted exponent per (stage, variable): `value` against the sweep's variable."""
    out = []
    for stage in STAGES:
        for var in VARIABLES:
            rows = raw[(raw["stage"] == stage) & (raw["sweep"] == var)]
            if rows.empty or rows[value].isna().all():
                continue
            f = fit_exponent(rows[var], rows[value])
            out.append({"stage": stage, "variable": var, **asdict(f)})
    return pd.DataFrame(out)
