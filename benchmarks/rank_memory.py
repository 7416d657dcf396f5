"""Peak memory of the heads' attention effective rank (Figure 1(a)'s logging) at the paper's sizes:
all S inputs in one call (`ntk.memory_gb: null`) vs chunks of inputs within the run's budget.

`mat.effective_rank.head_effective_rank` asks the model for every head's T x T attention matrix
of its inputs (`attention_probs`, [layers, S, heads, T, T]) and takes their singular values in
float64. In one call that grows as S x heads x T^2: the smoke run of `paper` saw 8.2 GB at S = 4
before the mNTK's budget applied to it. With `ntk.memory_gb` the inputs go in chunks that fit
(`samples_per_chunk`: every head's matrix at `BYTES_PER_ENTRY`, 24 bytes per entry: float32, its
float64 copy, LAPACK's copy and the forward's scores).

The models, sequence length, S and budget are the `paper` profile's run configs of the
experiments that log the ranks of heads (`--experiments`, default table1 BERT-base, table2 Switch,
table7_large BERT-large), with random weights and random token ids (memory and time do not depend
on them). Each (experiment, S, path) runs in a process of its own: `extra_gb` is its peak (CPU:
VmHWM reset just before; CUDA: max allocated) minus what it held before (model and inputs).

Rows measured at small S (`--samples`) stand beside the paper's S, extrapolated and labelled:

    one call   extra_gb linear in S, fitted to the measured S (least squares)
    budgeted   extra_gb of the measured run with a full chunk: a chunk's peak does not grow with S
    both       seconds linear in S (the work is per input), from the largest measured S

    python benchmarks/rank_memory.py                       # CPU, as committed
    python benchmarks/rank_memory.py --device cuda --samples 8 64
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from mat import profiles
from mat.atomic import write_csv_atomic
from mat.bench import child as child_process
from mat.bench import fit
from mat.bench.memory import Peak, rss_bytes
from mat.effective_rank import head_effective_rank, probs_bytes_per_sample, samples_per_chunk
from mat.models import build_model
from mat.train.run_config import validate

FIELDS = ("experiment", "model", "params", "seq_len", "samples", "path", "memory_gb", "chunks", "chunk_size",
          "counted_chunk_gb", "extra_gb", "seconds", "status", "threads", "device", "cpu", "gpu", "torch")
PATHS = ("one call", "budgeted")


def run_setup(experiment: str) -> tuple[dict, int, int, float | None]:
    """(model config with vocabulary, seq_len, S, ntk.memory_gb) of the paper profile's MAT run."""
    profile = profiles.load_profile("paper")
    method = next(m for m in profile["experiments"][experiment]["methods"] if m.startswith("mat"))
    cfg = profiles.run_config(profile, experiment, method, 0)
    cfg = validate(cfg, f"paper profile, {experiment}/{method}", model_checks=False)  # defaults filled
    model = {**cfg["model"], "vocab_size": cfg["data"]["vocab_size"]}
    return model, int(cfg["data"]["seq_len"]), int(cfg["ntk"]["samples"]), cfg["ntk"]["memory_gb"]


def child(args) -> None:
    """One effective-rank measurement in this process; prints a JSON line."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    model_cfg, seq, _, budget = run_setup(args.experiment)
    model = build_model(model_cfg).to(dev)
    x = torch.randint(0, model_cfg["vocab_size"], (args.s, seq), generator=torch.Generator().manual_seed(1)).to(dev)
    gb = None if args.path == "one call" else budget
    base = torch.cuda.memory_allocated(dev) if dev.type == "cuda" else rss_bytes()
    meter = Peak(dev)
    meter.reset()
    t0 = time.perf_counter()
    head_effective_rank(model, x, gb)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0
    child_process.report({"extra": meter.read() - base, "seconds": seconds, "chunk": samples_per_chunk(model, x, gb),
                      "per_sample": probs_bytes_per_sample(model, seq),
                      "params": sum(p.numel() for p in model.parameters())})


def _measure(experiment: str, s: int, path: str, args) -> dict:
    return child_process.run(__file__, "--experiment", experiment, "--s", str(s), "--path", path,
                             "--threads", str(args.threads), "--device", args.device, threads=args.threads)


def rows_for(experiment: str, args, common: dict) -> list[dict]:
    model_cfg, seq, paper_s, budget = run_setup(experiment)
    rows, per_sample = [], None
    for path in PATHS:
        gb = None if path == "one call" else budget
        measured = []
        sizes = args.samples
        if path == "budgeted":  # a full chunk and one more input: two chunks, the first full
            sizes = [min(paper_s, max(1, int(budget * 1e9 // per_sample)) + 1)]
        for s in sizes:
            r = _measure(experiment, s, path, args)
            measured.append((s, r))
            per_sample = r["per_sample"]
            rows.append(_row(experiment, model_cfg, seq, s, path, gb, r, r["extra"] / 1e9, r["seconds"], "measured", common))
            print(f"{experiment} {path} S={s}: {r['extra'] / 1e9:.2f} GB, {r['seconds']:.1f} s", flush=True)
        if paper_s not in [s for s, _ in measured]:
            s_max, r_max = measured[-1]
            if path == "one call":
                a, b = fit.line([s for s, _ in measured], [r["extra"] / 1e9 for _, r in measured])
                extra = a + b * paper_s
            else:
                extra = r_max["extra"] / 1e9
            chunk = paper_s if gb is None else max(1, min(paper_s, int(gb * 1e9 // r_max["per_sample"])))
            r = {**r_max, "chunk": chunk}
            rows.append(_row(experiment, model_cfg, seq, paper_s, path, gb, r, extra, r_max["seconds"] * paper_s / s_max,
                             f"extrapolated from S={','.join(str(s) for s, _ in measured)}", common))
    return rows


def _row(experiment, model_cfg, seq, s, path, gb, r, extra_gb, seconds, status, common) -> dict:
    chunk = int(r["chunk"])
    return {"experiment": experiment, "model": f"{model_cfg['arch']}-{model_cfg.get('size', '')}",
            "params": r["params"], "seq_len": seq, "samples": s, "path": path,
            "memory_gb": "" if gb is None else gb, "chunks": -(-s // chunk), "chunk_size": chunk,
            "counted_chunk_gb": round(chunk * r["per_sample"] / 1e9, 3), "extra_gb": round(extra_gb, 3),
            "seconds": round(seconds, 1), "status": status, **common}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiments", nargs="+", default=["table1", "table2", "table7_large"])
    p.add_argument("--samples", nargs="+", type=int, default=[1, 2], help="S measured on the one-call path")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rank_memory.csv")
    child_process.add_arguments(p, "--experiment", "--s", "--path")
    args = p.parse_args(argv)
    if args.child:
        args.s = int(args.s)
        child(args)
        return 0
    common = child_process.machine_columns(args.device, args.threads)
    rows = [r for e in args.experiments for r in rows_for(e, args, common)]
    write_csv_atomic(args.out, rows, FIELDS)
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
