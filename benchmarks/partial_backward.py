"""Does the partial backward save wall-clock time in proportion to the FLOPs it saves?

For BERT (heads) and VGG16 (filters): a plain model ("vanilla") and the same model with the
partial backward installed and 0%, 25%, 50%, 75% of the modules of every layer frozen (a seeded
random choice per layer). Each training step is forward + cross-entropy + backward + optimizer
step (the trainer's, `mat.train.step`); the variants are timed by the project's harness
(`mat.bench.harness.round_robin`: one step each per round, in a fresh random order, so load drift on
a shared machine hits them alike) and the median over rounds is kept, after warm-up rounds. Wall-clock seconds decide; process CPU seconds are reported beside them because on a
shared CPU they are less disturbed by other processes. FLOPs are
measured with `mat.flops.count_step` (forward, and the backward that really runs).

    python benchmarks/partial_backward.py --threads 1          # CPU, as committed (see below)
    python benchmarks/partial_backward.py --device cuda        # on a GPU

On a shared CPU, use one thread: with two OpenMP threads and other processes on the cores, the
threads spin-wait on each other and steps get several times slower and far noisier.

Output: benchmarks/results/partial_backward.csv (written to a temporary file, then renamed).
Goal: time saving >= 70% of the FLOPs saving on GPU, and positive on CPU.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path

import torch

from mat.atomic import write_csv_atomic
from mat.backward import install_partial_backward
from mat.bench.harness import round_robin
from mat.bench.variants import frozen_mask
from mat.flops import count_step
from mat.models import build_model, build_partition
from mat.train.step import objective, update
from mat.train.tasks import cross_entropy

FRACTIONS = (0.0, 0.25, 0.5, 0.75)
FIELDS = (
    "model", "config", "frozen_fraction", "step_seconds", "flops_fwd", "flops_bwd", "flops_total",
    "flops_saving", "time_saving", "time_per_flops_saving", "cpu_seconds", "cpu_time_saving",
    "count_seconds", "device", "torch", "threads", "repeats",
)


def make_step(model, inputs, targets, optimizer):
    """One training step as the trainer takes it (`mat.train.step`), for the harness to time."""

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = objective(model, inputs, targets, cross_entropy)
        update(loss, optimizer)

    return step


def bench(name, config, cfg, kind, inputs, targets, make_optimizer, args, device) -> list[dict]:
    torch.manual_seed(args.seed)
    plain = build_model(cfg).to(device).train()
    model = copy.deepcopy(plain)
    part = build_partition(model, [kind])
    pb = install_partial_backward(model, part)
    masks = {f: frozen_mask(part, f, args.seed) for f in FRACTIONS}

    variants = {"vanilla": (plain, None)} | {f: (model, masks[f]) for f in FRACTIONS}
    steps, flops, count_s = {}, {}, {}
    opt_plain, opt_model = make_optimizer(plain), make_optimizer(model)
    for key, (m, mask) in variants.items():
        if mask is not None:
            pb.set_active(mask)
        t0 = time.perf_counter()
        c = count_step(m, inputs)  # what the meter pays once per new (shape, active set)
        count_s[key] = time.perf_counter() - t0
        flops[key] = (c["fwd"], c["bwd"])
        steps[key] = make_step(m, inputs, targets, opt_plain if mask is None else opt_model)

    def before(key) -> None:
        if variants[key][1] is not None:
            pb.set_active(variants[key][1])

    times, cpu = round_robin(steps, repeats=args.repeats, warmup=args.warmup, seed=args.seed, device=device,
                             before=before, label=f"{name}: ")

    base_t, base_c = statistics.median(times["vanilla"]), statistics.median(cpu["vanilla"])
    base_f = sum(flops["vanilla"])
    rows = []
    for key in variants:
        t, c = statistics.median(times[key]), statistics.median(cpu[key])
        fwd, bwd = flops[key]
        f_save = 1 - (fwd + bwd) / base_f
        t_save = 1 - t / base_t
        rows.append(
            {
                "model": name,
                "config": config,
                "frozen_fraction": "vanilla" if key == "vanilla" else key,
                "step_seconds": f"{t:.4f}",
                "flops_fwd": fwd,
                "flops_bwd": bwd,
                "flops_total": fwd + bwd,
                "flops_saving": f"{f_save:.4f}",
                "time_saving": f"{t_save:.4f}",
                "time_per_flops_saving": f"{t_save / f_save:.3f}" if f_save > 1e-9 else "",
                "cpu_seconds": f"{c:.4f}",
                "cpu_time_saving": f"{1 - c / base_c:.4f}",
                "count_seconds": f"{count_s[key]:.4f}",
                "device": (
                    torch.cuda.get_device_name(device)
                    if device.type == "cuda"
                    else f"cpu (no GPU on this machine: {os.cpu_count()} cores)"
                ),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "repeats": args.repeats,
            }
        )
    pb.remove()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--repeats", type=int, default=40, help="timed rounds (median kept)")
    p.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bert-size", default="mini")
    p.add_argument(
        "--vocab", type=int, default=2000,
        help="BERT vocabulary (default 2000, the project's default; 30522 = bert-base WordPiece, where "
        "the never-frozen MLM decoder dominates and heads can save at most ~3%% of the FLOPs)",
    )
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--bert-batch", type=int, default=8)
    p.add_argument("--vgg-width", type=float, default=0.5, help="channel multiplier of VGG16 (1.0 = paper)")
    p.add_argument("--vgg-batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--only", choices=["bert", "vgg16"], default=None, help="run one model only")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "partial_backward.csv")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("partial_backward: --device cuda asked for, but torch sees no GPU")
    g = torch.Generator().manual_seed(args.seed)

    rows = []
    if args.only in (None, "bert"):
        cfg = {"arch": "bert", "size": args.bert_size, "vocab_size": args.vocab, "dropout": 0.0, "attn_dropout": 0.0}
        x = torch.randint(0, args.vocab, (args.bert_batch, args.seq), generator=g).to(device)
        y = torch.randint(0, args.vocab, (args.bert_batch, args.seq), generator=g).to(device)
        adamw = lambda m: torch.optim.AdamW(m.parameters(), lr=1e-4)
        config = f"{args.bert_size} vocab={args.vocab} batch={args.bert_batch}x{args.seq} AdamW"
        rows += bench("bert", config, cfg, "head", x, y, adamw, args, device)
    if args.only in (None, "vgg16"):
        cfg = {"arch": "vgg16", "width": args.vgg_width}
        x = torch.randn(args.vgg_batch, 3, 32, 32, generator=g).to(device)
        y = torch.randint(0, 10, (args.vgg_batch,), generator=g).to(device)
        sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
        config = f"width={args.vgg_width} batch={args.vgg_batch}x3x32x32 SGD"
        rows += bench("vgg16", config, cfg, "filter", x, y, sgd, args, device)

    write_csv_atomic(args.out, rows, FIELDS)
    for r in rows:
        keys = ("model", "frozen_fraction", "step_seconds", "flops_saving", "time_saving", "time_per_flops_saving")
        print(", ".join(f"{k}={r[k]}" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
