"""Benchmark: mNTK of every attention head of BERT-mini (or every filter of VGG16), fast path vs
per-sample loops.

BERT-mini (4 layers, hidden 256, 4 heads; Turc et al. 2019), sequence length 128, S = 64 samples,
vocabulary 30,522 (the profiles' WordPiece size), eval mode. Every method computes the same
[16 heads, 64, 64] Grams with the same Gram code; only the per-sample gradients differ:

- hooks: `mat.ntk.module_grams` (one batched backward per chunk of 16 samples, per-sample weight
  gradients from layer inputs x output gradients, MLM decoder evaluated as one summed unit);
- hooks (full decoder): the same without the summed-output-layer saving;
- vmap: torch.func vmap(grad(sum of logits)) over functional_call, chunk 16;
- loop: one `autograd.grad` per sample (the brute-force reference).

Seconds are the median wall-clock time of `--repeats` runs (after one warm-up run of each method,
runs interleaved across methods); speedup is the loop's median over the method's. On a shared
machine wall time swings with other load, so the CSV also carries the fastest run (`min_seconds`,
`speedup_min`) and the median process CPU time (`cpu_seconds`). `max_rel_diff` compares each
method's Grams with the loop's.

What bounds the speedup: every exact method must run the encoder forward and backward for all
S x T tokens and form the per-sample weight gradients; the loop additionally runs the 30,522-wide
MLM decoder forward and backward per sample (about 2/3 of its FLOPs), which the fast path avoids.
So at equal arithmetic efficiency the fast path is about 3x the loop; with more threads the
loop's batch-of-one matmuls parallelise worse than the batched ones and the gap grows.

VGG16's `max_rel_diff` (3e-4 at width 1, S = 64) is not an error of the fast path: max-pooling makes
the per-sample gradient discontinuous where two inputs of a pooling window nearly tie, and the float32
roundoff of a batch-of-16 pass differs from a batch-of-1 pass enough to flip such an argmax in one
of the 64 samples (checked: the batched forward agrees with float64 to 5e-7; the output gradients
differ from layer 3 down, behind a pooling layer). Both Grams are valid to float32 precision.

`--model vgg16`: every filter of VGG16 (width 1, CIFAR-10 inputs, S = 64): hooks (each conv layer
takes the cheaper route, `mat.ntk._kernel_is_cheaper`), hooks with every layer forced to form
per-sample gradients ("no conv kernel"), and the loop.

`--flops`: no timing; each method's FLOPs counted once with FlopCounterMode, written to
benchmarks/results/ntk_flops.csv (what bounds the speedups at equal arithmetic efficiency).

Run: python benchmarks/ntk_speed.py [--repeats 3] [--threads 2 1] [--model bert-mini|vgg16]
     [--out benchmarks/results/ntk_speed.csv]   (rows of other models already in --out are kept)
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from mat import ntk
from mat.atomic import write_csv_atomic
from mat.bench.harness import load_avg, round_robin
from mat.models import build_model, build_partition
from mat.provenance import cpu_name


def grams_from(grads: dict[str, torch.Tensor], part, s: int) -> torch.Tensor:
    spans = ntk._spans(part)
    grams = torch.zeros(len(part), s, s, dtype=torch.float64)
    for name, (dim, sp) in spans.items():
        ntk._add_grams(grams, grads[name], dim, sp)
    return 0.5 * (grams + grams.transpose(1, 2))


def count_flops(methods: dict, label: str, args) -> int:
    """Each method's FLOPs, counted once with FlopCounterMode (matmuls, convolutions, attention);
    rows of the other model already in --flops-out are kept."""
    rows = []
    for m, fn in methods.items():
        with FlopCounterMode(display=False) as counter:
            fn()
        rows.append({"model": label, "method": m, "samples": args.samples, "gflops": f"{counter.get_total_flops() / 1e9:.2f}"})
        print(f"{m:22s} {rows[-1]['gflops']:>10s} GFLOPs")
    loop = float(rows[-1]["gflops"])
    for r in rows:
        r["loop_over_method"] = f"{loop / float(r['gflops']):.2f}"
    if args.flops_out.is_file():
        with args.flops_out.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["model"] != label] + rows
    write_csv_atomic(args.flops_out, rows, list(rows[-1]))
    print(f"wrote {args.flops_out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--model", choices=["bert-mini", "vgg16"], default="bert-mini")
    ap.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()],
                    help="torch intra-op thread counts to measure, one block of rows each (default: torch's)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ntk_speed.csv")
    ap.add_argument("--flops", action="store_true",
                    help="instead of timing: count each method's FLOPs once (FlopCounterMode) into --flops-out")
    ap.add_argument("--flops-out", type=Path, default=Path(__file__).parent / "results" / "ntk_flops.csv")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    if any(t < 1 for t in args.threads):
        ap.error("--threads must be >= 1")
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    s = args.samples
    if args.model == "vgg16":
        model = build_model({"arch": "vgg16", "width": 1.0})
        part = build_partition(model, ["filter"])
        x = torch.randn(s, 3, 32, 32, generator=gen)
        label = "vgg16 width 1 filters 32x32 inputs"
    else:
        model = build_model({"arch": "bert", "size": "mini", "vocab_size": args.vocab})
        part = build_partition(model, ["head"])
        x = torch.randint(0, args.vocab, (s, args.seq_len), generator=gen)
        label = f"bert-mini L4 H256 heads4 vocab{args.vocab}"
    names = part.param_names

    def direct_route():
        kernel = ntk._kernel_is_cheaper
        ntk._kernel_is_cheaper = lambda *a: False
        try:
            return ntk.module_grams(model, x, part, chunk_size=args.chunk)
        finally:
            ntk._kernel_is_cheaper = kernel

    methods = {"hooks": lambda: ntk.module_grams(model, x, part, chunk_size=args.chunk)}
    if args.model == "vgg16":
        methods["hooks (no conv kernel)"] = direct_route
    else:
        methods["hooks (full decoder)"] = lambda: grams_from(
            ntk.per_sample_grads_hooks(model, x, names, args.chunk, sum_output_layer=False), part, s
        )
        methods[f"vmap chunk {args.chunk}"] = lambda: grams_from(ntk.per_sample_grads_vmap(model, x, names, args.chunk), part, s)
    methods["loop"] = lambda: grams_from(ntk.per_sample_grads_loop(model, x, names), part, s)
    if args.flops:
        return count_flops(methods, label, args)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        results: dict[str, torch.Tensor] = {}
        for m, fn in methods.items():  # warm-up (allocator, kernels)
            results[m] = fn()
        # interleaved in a fixed order, so load changes on a shared machine hit every method
        times, cpu = round_robin(methods, repeats=args.repeats, warmup=0, seed=0, shuffle=False, label=None)

        ref = results["loop"]
        loop_s, loop_min = statistics.median(times["loop"]), min(times["loop"])
        for m in methods:
            sec = statistics.median(times[m])
            rel = ((results[m] - ref).abs().max() / ref.abs().max()).item()
            rows.append(
                {
                    "method": m,
                    "seconds": f"{sec:.3f}",
                    "speedup_vs_loop": f"{loop_s / sec:.2f}",
                    "min_seconds": f"{min(times[m]):.3f}",
                    "speedup_min": f"{loop_min / min(times[m]):.2f}",
                    "cpu_seconds": f"{statistics.median(cpu[m]):.3f}",
                    "max_rel_diff": f"{rel:.1e}",
                    "repeats": args.repeats,
                    "model": label,
                    "seq_len": args.seq_len if args.model != "vgg16" else "",
                    "samples": s,
                    "torch": torch.__version__,
                    "cpu": cpu_name(),
                    "threads": threads,
                    "load_avg_1min": f"{load_avg():.2f}",  # other work on the machine at the time
                }
            )
            print(f"threads {threads}  {m:22s} {sec:8.3f} s  x{loop_s / sec:5.2f}  rel diff {rel:.1e}  (runs: {', '.join(f'{t:.2f}' for t in times[m])})")

    if args.out.is_file():  # keep the other model's rows
        with args.out.open(newline="") as f:
            kept = [r for r in csv.DictReader(f) if not r["model"].startswith(args.model.split("-")[0])]
        rows = kept + rows
    write_csv_atomic(args.out, rows, list(rows[0]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
