"""Peak memory and time of the mNTK: one pass (`ntk.memory_gb: null`) vs passes within a budget.

Issue 12: `mat.ntk.module_grams` held the per-sample gradients of every owned parameter for all S
samples at once; at the paper's S = 64 that is 65 GB for the paper Switch Transformer's heads and
experts. With `memory_gb` the owned parameters go in passes of layers that fit the budget
(`mat.ntk_budget`). Models, fp32, random weights (memory and time do not depend on them), random
token ids, eval mode, chunks of `--chunk` samples:

    bert-base    heads of BERT-base (12 x 768, 28.3M owned parameters)
    bert-large   heads of BERT-large (24 x 1024, 100.7M owned)
    switch       heads + experts of the paper Switch (12 x 768, 4 experts; 254.8M owned)

Each (model, S, path) runs in its own process (so its peak is its own): `extra_gb` is the peak
resident set (CPU: VmHWM, reset just before the mNTK; CUDA: max_memory_allocated) minus the
memory held before it (model and inputs): the mNTK's own memory. `gflops`: every pass's FLOPs,
counted on a shape-only model (deterministic; the time ratio at equal arithmetic efficiency). `pass_gb` is what the largest pass
allocated for per-sample gradients, counted from its tensors. A one-pass run whose per-sample
gradients alone would exceed `--max-gb` is not run (the machine is shared); those rows, and every
S = 64 row, are extrapolated (`status`):

    one pass   extra_gb linear in S, fitted to the measured S (least squares)
    budgeted   extra_gb = (the largest measured extra_gb minus its held_gb: a chunk's activations
               and overheads) + held_gb at that S

`held_gb`: the most one pass held, counted on the shape-only model: its per-sample gradients + the
cached boundaries and split stages' kept activations at the time; `memory_gb` bounds it
(`mat.ntk_budget` reserves the latter per pass).
    both       seconds = the model's measured seconds per counted GFLOP (pooled over both paths'
               measured rows) x the row's GFLOPs: the extrapolated time ratio of the two paths is
               their GFLOPs ratio (wall time on this shared CPU is noisy: 2.7x between two runs
               of the identical one-pass code was seen, so measured seconds compare only roughly)

The budgeted passes run only their own stages (`mat.ntk_stages`: one forward caches each pass's
input boundary, the passes run top-down from it), so their GFLOPs are the one pass's plus at most
one forward.

    python benchmarks/ntk_memory.py --threads 1                     # CPU, as committed
    python benchmarks/ntk_memory.py --device cuda --samples 16 32 64   # on a GPU: all measured
    python benchmarks/ntk_memory.py --seq 512 --samples 64 --max-gb 0 --models bert-base  # the plan and GFLOPs only
    python benchmarks/ntk_memory.py --seq 512 --samples 64 --max-gb 0 --models switch bert-large --budget 5

Output: benchmarks/results/ntk_memory.csv (atomically; rows of models not run are kept), a
markdown table on stdout. Targets:
budgeted extra memory at S = 64 within the budget plus a chunk's activations (Switch <= 8 GB); time
at most 1.5x the one pass where that fits. At seq 512, S = 64 the paper Switch and BERT-large need
>= 4.45 GB per pass (boundaries included): `--budget 5` (their paper profile's ntk.memory_gb).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

from mat.models import build_model, build_partition
from mat.ntk_budget import GB
from mat.atomic import write_csv_atomic
from mat.bench import child as child_process
from mat.bench import fit
from mat.bench.memory import Peak, rss_bytes

MODELS = {
    "bert-base": ({"arch": "bert", "size": "base", "vocab_size": 30522}, ["head"]),
    "bert-large": ({"arch": "bert", "size": "large", "vocab_size": 30522}, ["head"]),
    "switch": ({"arch": "switch", "size": "paper", "experts": 4, "capacity_factor": 1.5, "vocab_size": 30522},
               ["head", "expert"]),
}
PAPER_S = 64
FIELDS = (
    "model", "partition", "owned_params", "seq_len", "samples", "path", "memory_gb", "passes", "pass_gb", "held_gb",
    "gflops", "extra_gb", "peak_gb", "seconds", "status", "threads", "chunk", "device", "cpu", "gpu", "torch",
)


def child(args) -> None:
    """One mNTK in this process; prints a JSON line."""
    from mat import ntk

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    cfg, kinds = MODELS[args.model]
    model = build_model(cfg).to(dev)
    part = build_partition(model, kinds)
    x = torch.randint(0, 30522, (args.s, args.seq), generator=torch.Generator().manual_seed(1)).to(dev)
    gb = None if args.path == "one pass" else args.budget
    held: list[int] = []
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    base = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else rss_bytes()
    meter = Peak(dev)
    meter.reset()  # CPU: VmHWM back to the current RSS
    t0 = time.perf_counter()
    ntk.module_grams(model, x, part, chunk_size=args.chunk, memory_gb=gb, pass_bytes=held)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    peak = meter.read()
    child_process.report({"peak": peak, "base": base, "seconds": seconds, "passes": len(held), "pass": max(held)})


def plan(model_name: str, s: int, budget: float | None, seq: int) -> tuple[int, int, int]:
    """(passes, largest pass's per-sample gradient bytes, owned parameters) on a shape-only model
    (the budget's reserve for cached boundaries and kept activations counted at sequence `seq`)."""
    from mat import ntk

    cfg, kinds = MODELS[model_name]
    with torch.device("meta"):
        model = build_model(cfg)
    part = build_partition(model, kinds)
    passes = ntk.passes(model, part, s, budget, sample=torch.zeros((1, seq), dtype=torch.long, device="meta"))
    return len(passes), max(p.grad_bytes for p in passes), sum(len(p.names) and sum(
        dict(model.named_parameters())[n].numel() for n in p.names) for p in passes)


def gflops(model_name: str, s: int, seq: int, chunk: int, budget: float | None) -> tuple[float, int]:
    """(GFLOPs of the mNTK (every pass), counted with FlopCounterMode on a shape-only model: the
    time ratio of the two paths at equal arithmetic efficiency, free of the shared CPU's noise;
    the most bytes one pass held: its per-sample gradients + the cached boundaries and split
    stages' kept activations at the time, `mat.ntk.pass_gradients`; what `memory_gb` bounds)."""
    from torch.utils.flop_counter import FlopCounterMode

    from mat import ntk

    cfg, kinds = MODELS[model_name]
    with torch.device("meta"):
        model = build_model(cfg)
    part = build_partition(model, kinds)
    x = torch.zeros((s, seq), dtype=torch.long, device="meta")
    held: dict = {}
    grads: list[int] = []
    with FlopCounterMode(display=False) as counter:
        ntk.module_grams(model, x, part, chunk_size=chunk, memory_gb=budget, pass_bytes=grads, held=held)
    return counter.get_total_flops() / 1e9, max(g + e for g, e in zip(grads, held["per_pass"]))


def measure(model: str, s: int, path: str, args) -> dict:
    return child_process.run(__file__, "--model", model, "--s", str(s), "--path", path, "--seq", str(args.seq),
                             "--chunk", str(args.chunk), "--threads", str(args.threads), "--budget", str(args.budget),
                             "--device", args.device, threads=args.threads)


def _previous(args) -> dict:
    """Measured rows already in --out, by (model, seq_len, samples, path)."""
    if not args.out.is_file():
        return {}
    with args.out.open(newline="") as f:
        return {(r["model"], int(r["seq_len"]), int(r["samples"]), r["path"]): r
                for r in csv.DictReader(f) if r["status"] == "measured"}


def rows_for(model: str, args, common: dict) -> list[dict]:
    kinds = "+".join(MODELS[model][1])
    previous = _previous(args) if args.keep_measured else {}
    owned = plan(model, 1, None, args.seq)[2]
    rows = []
    for path in ("one pass", "budgeted"):
        budget = None if path == "one pass" else args.budget
        measured = []
        kept: dict[int, int] = {}  # S -> the most one pass held (per-sample gradients, boundaries, kept activations)
        for s in sorted(set(args.samples) | {PAPER_S}):
            passes, pass_bytes, _ = plan(model, s, budget, args.seq)
            flops, kept[s] = gflops(model, s, args.seq, args.chunk, budget)
            row = {"model": model, "partition": kinds, "owned_params": owned, "seq_len": args.seq, "samples": s,
                   "path": path, "memory_gb": "null" if budget is None else budget, "passes": passes,
                   "pass_gb": f"{pass_bytes / GB:.3f}", "held_gb": f"{kept[s] / GB:.3f}",
                   "gflops": f"{flops:.1f}", **common}
            fits = pass_bytes <= args.max_gb * GB
            old = previous.get((model, args.seq, s, path))
            if old is not None and s in args.samples:  # --keep-measured: not run again
                row.update({k: old[k] for k in ("passes", "pass_gb", "extra_gb", "peak_gb", "seconds", "status")})
                row.update({k: old[k] for k in common})
                measured.append(row)
            elif s in args.samples and fits:
                print(f"ntk_memory: {model} S={s} {path} ...", file=sys.stderr, flush=True)
                got = measure(model, s, path, args)
                row.update(passes=got["passes"], pass_gb=f"{got['pass'] / GB:.3f}",
                           extra_gb=f"{(got['peak'] - got['base']) / GB:.3f}", peak_gb=f"{got['peak'] / GB:.3f}",
                           seconds=f"{got['seconds']:.1f}", status="measured")
                measured.append(row)
                _write(args, [*rows, row])  # so far: an interrupted run keeps what it measured
            else:
                row["status"] = "extrapolated"
            rows.append(row)
        done = [r for r in rows if r["path"] == path and r["status"] == "measured"]
        if not done:  # nothing measured to extrapolate from: the plan and its GFLOPs only
            for r in rows:
                if r["path"] == path:
                    r["status"] = "flops only"
            continue
        ss = [r["samples"] for r in done]
        a, b = fit.line(ss, [float(r["extra_gb"]) for r in done])
        last = max(done, key=lambda r: r["samples"])
        overhead = float(last["extra_gb"]) - float(last["held_gb"] or last["pass_gb"])  # a chunk's activations
        for r in rows:
            if r["path"] == path and r["status"] == "extrapolated":
                s = r["samples"]
                extra = a + b * s if path == "one pass" else overhead + kept[s] / GB
                r.update(extra_gb=f"{extra:.3f}")
    done = [r for r in rows if r["status"] == "measured"]
    if done:  # one rate for both paths: their extrapolated time ratio is their GFLOPs ratio
        per = sum(float(r["seconds"]) for r in done) / sum(float(r["gflops"]) for r in done)
        for r in rows:
            if r["status"] == "extrapolated":
                r["seconds"] = f"{per * float(r['gflops']):.1f}"
    return rows


def _write(args, rows: list[dict]) -> list[dict]:
    """Write `rows` to --out, keeping the rows there of (model, sequence length)s not in `rows`
    (and, for those in `rows`, measured rows at other S); returns what was written."""
    keep = []
    if args.out.is_file():
        with args.out.open(newline="") as f:
            done = {(r["model"], int(r["seq_len"]), int(r["samples"]), r["path"]) for r in rows}
            models = {(r["model"], int(r["seq_len"])) for r in rows}
            keep = [r for r in csv.DictReader(f) if (r["model"], int(r["seq_len"])) not in models or (
                r["status"] == "measured" and (r["model"], int(r["seq_len"]), int(r["samples"]), r["path"]) not in done)]
    out = keep + rows
    write_csv_atomic(args.out, out, FIELDS)
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| model | S | path | passes | per-sample grads of a pass (GB) | extra memory (GB) | GFLOPs | seconds | status |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['samples']} | {r['path']} | {r['passes']} | {r['pass_gb']} | "
                     f"{r.get('extra_gb', '')} | {r.get('gflops', '')} | {r.get('seconds', '')} | {r['status']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--samples", nargs="+", type=int, default=[4, 8, 16])
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--chunk", type=int, default=4)
    p.add_argument("--budget", type=float, default=4.0, help="ntk.memory_gb of the budgeted path")
    p.add_argument("--max-gb", type=float, default=5.0, help="run a path only if a pass's per-sample gradients fit")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--keep-measured", action="store_true",
                   help="take measured rows already in --out instead of running them again (extrapolations are redone)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ntk_memory.csv")
    child_process.add_arguments(p, "--model", "--s", "--path")
    args = p.parse_args(argv)
    if args.child:
        args.s = int(args.s)
        child(args)
        return 0
    common = {"chunk": args.chunk, **child_process.machine_columns(args.device, args.threads)}
    rows = [r for m in args.models for r in rows_for(m, args, common)]
    rows = _write(args, rows)
    print(markdown(rows))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
