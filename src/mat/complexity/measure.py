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
   Jacobian, all heads' Grams by batched matmuls, eigenvalues, in passes that fit the run's memory
   budget `ntk.memory_gb`) -- not split into stages 1-5.

Each stage: wall time (median of `repeats`, after one warm-up call) and peak tensor memory
(`TensorMemory`, exact bytes). Three one-variable sweeps around a base point: S (samples), m (via
the hidden size: m grows with hidden^2 at fixed layers and heads) and L (via the heads per layer at
fixed hidden: m stays the same), sized by the profile's `complexity` block (`mat.complexity.sweep`).
The fitted exponents are Table 6's business (mat.report.complexity_table), not this module's.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from mat.complexity.sweep import Sweep, SweepError, sweep_config
from mat.complexity.tensor_memory import TensorMemory

STAGES = ("jacobian", "full_gram", "modular_grams", "full_eig", "modular_eig", "trainer_mntk")


def resolve_device(sweep: Sweep) -> str:
    """The sweep's device, resolved as a run's `device` is (auto: cuda when there is one)."""
    from mat.train.loop import resolve_device as run_device
    from mat.train.run_config import ConfigError

    try:
        return str(run_device(sweep.device))
    except ConfigError as exc:  # reworded to name this block
        raise SweepError(f"complexity.{exc}") from exc


def hardware_text(device: str, threads: int) -> str:
    from mat.provenance import hardware, versions

    hw, v = hardware(torch.device(device)), versions()
    where = f"GPU {hw['gpu']} with " if hw["gpu"] else ""
    return f"{where}{hw['cpu']} ({hw['cpu_count']} logical CPUs), {threads} torch thread(s), torch {v['torch']}"


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


def _timed(fn: Callable[[], object], repeats: int, device: str) -> tuple[float, float, float]:
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


def measure_point(sweep: Sweep, device: str, s: int, hidden: int, heads: int) -> list[dict]:
    """Every stage at one (S, hidden, heads): seconds and peak bytes, plus m and L."""
    from mat.models import build_model, build_partition
    from mat.ntk import eigenvalues, module_ntk, per_sample_grads_hooks

    torch.manual_seed(sweep.seed)
    model = build_model({"arch": "bert", "layers": sweep.layers, "hidden": hidden, "heads": heads,
                         "intermediate": 2 * hidden, "max_len": sweep.seq_len, "vocab_size": sweep.vocab_size})
    model = model.to(device)
    part = build_partition(model, ["head"])
    params = dict(model.named_parameters())
    m, n_modules = int(part.sizes(params).sum()), len(part)
    gen = torch.Generator().manual_seed(sweep.seed)
    inputs = torch.randint(0, sweep.vocab_size, (s, sweep.seq_len), generator=gen).to(device)
    names = part.param_names

    def jac():
        return per_sample_grads_hooks(model, inputs, names, sweep.chunk_size)

    grads = jac()
    rows = []

    def record(stage: str, fn: Callable[[], object], memory: bool) -> None:
        med, lo, hi = _timed(fn, sweep.repeats, device)
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
    record("trainer_mntk", lambda: module_ntk(model, inputs, part, sweep.chunk_size, memory_gb=sweep.memory_gb), memory=False)
    return rows


def run_sweep(sweep: Sweep, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """The raw measurements: one row per (sweep variable, point, stage), naming the hardware."""
    device = resolve_device(sweep)
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
                cache[key] = measure_point(sweep, device, s, hidden, heads)
            rows += [{"sweep": var, **r} for r in cache[key]]
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    raw = pd.DataFrame(rows)
    raw.insert(0, "hardware", hardware_text(device, used))
    return raw


# ----------------------------------------------------------------------------- files and command
def output_paths(profile_name: str, root: str | Path = ".") -> dict[str, Path]:
    """results/<profile>/complexity/{measurements.csv, sweep.json}: what the `complexity` rule declares."""
    out = Path(root) / "results" / profile_name / "complexity"
    return {"csv": out / "measurements.csv", "sweep": out / "sweep.json"}


def write(profile: dict, root: str | Path = ".", progress=None) -> dict[str, Path]:
    """Measure the profile's sweep; write the raw rows and the resolved sweep (both or none)."""
    from mat.atomic import write_all_atomic

    sweep = sweep_config(profile)
    raw = run_sweep(sweep, progress)
    paths = output_paths(profile["profile"], root)
    sweep_json = json.dumps(sweep.to_dict(), indent=1, sort_keys=True) + "\n"
    write_all_atomic({paths["csv"]: raw.to_csv(index=False, na_rep=""), paths["sweep"]: sweep_json})
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mat.cli.profile_args import add_profile_arguments

    add_profile_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mat import profiles
    from mat.cli.profile_args import load

    try:
        paths = write(load(args), args.root, progress=lambda p: print(f"measuring {p}", flush=True))
    except (SweepError, profiles.ProfileError) as exc:
        print(f"python -m mat complexity: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {paths['csv']} and {paths['sweep']}")
    return 0
