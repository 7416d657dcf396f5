"""Training throughput of BERT masked language modelling: step time, tokens/s, achieved TFLOP/s, MFU.

One training step is what the trainer does for BERT: forward (transformers' `BertForMaskedLM`
through `mat.models.build_model`), MLM cross-entropy over the 15% masked positions (the others are
labelled -100, as `mat.data.mask_tokens` makes them), backward, AdamW step. Variants, by
`--frozen` fraction:

- 0 ("vanilla"): every head trained;
- f > 0: a MAT step with round(f x heads) heads of every layer frozen, through the project's partial
  backward (`mat.backward`: frozen heads compute no weight gradient), the heads chosen as in
  benchmarks/partial_backward.py (`mat.bench.variants.frozen_mask`).

The step is the trainer's own (`mat.train.step`: objective under autocast, then backward and the
optimizer step), with the trainer's MLM loss (`mat.train.tasks.cross_entropy`). The variants are
timed by the project's harness (`mat.bench.harness.round_robin`: one step each per round, in a fresh
random order, after `--warmup` rounds; the median over `--repeats` rounds is kept; CUDA
synchronised around each step). FLOPs are measured with `mat.flops.count_step` (the forward and the backward that really
runs, partial backward seen) on a shape-only copy of the model (PyTorch's "meta" device: no memory,
no arithmetic, the same FLOPs as counting the real model, checked by the tests) built with eager
attention, so attention is counted as the model's 4*B*h*L^2*d forward FLOPs (twice that backward)
whatever kernel the timed model runs: MFU as PaLM (Chowdhery et al. 2022, Appendix B) defines it,
with no credit for a flash kernel recomputing its scores.

    achieved TFLOP/s = measured FLOPs of one step / median step seconds
    MFU              = achieved / peak

The peak is `--peak-tflops`, or for a CUDA device found in `mat.bench.peaks` (NVIDIA's dense tensor-core
numbers, no 2:4 sparsity) the entry for the precision that runs: bf16 (`--precision bf16`, autocast
of forward and loss as in the trainer), tf32 (`--precision tf32`, fp32 tensors with TF32 matmuls) or
fp32 (`--precision fp32` with torch's default "highest" matmul precision). On a CPU the peak is left
empty unless given: there is no honest table of CPU peaks.

The issue's targets ("GPU speed"), on one H200 at seq 512:
- MFU >= 40% for vanilla BERT-base in bf16;
- a MAT step faster than vanilla by >= 70% of its measured FLOPs saving
  (time_per_flops_saving = time_saving / flops_saving >= 0.7).
The committed benchmarks/results/throughput.csv holds CPU numbers (no GPU was lent to this
project): they are CPU throughput, not a GPU measurement; every row names its hardware. Run

    python benchmarks/throughput.py --threads 1 --batch 2 --repeats 5 --warmup 1   # CPU, as committed
    python benchmarks/throughput.py --device cuda --precision bf16 --attention sdpa --compile

on a GPU for the targets. `--size` takes the BERT sizes of `mat.models.bert.SIZES`; `--layers`,
`--hidden`, `--heads`, `--intermediate` override the size (the tests use one layer of width 32).

Output: benchmarks/results/throughput.csv (a temporary file in the same folder, then renamed).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from mat.atomic import write_csv_atomic
from mat.backward import install_partial_backward
from mat.bench.harness import load_avg, round_robin
from mat.bench.peaks import peak_tflops
from mat.bench.variants import frozen_mask
from mat.data import MaskSpec, mask_tokens
from mat.flops import count_step
from mat.models import build_model, build_partition
from mat.policies.base import Decision
from mat.provenance import device_name as hardware
from mat.train.step import autocast, objective, update
from mat.train.tasks import cross_entropy

SPECIAL_IDS = (0, 1, 2, 3, 4)  # [PAD] [UNK] [CLS] [SEP] [MASK], as mat.data.tokenizer numbers them
MASK_ID = 4

FIELDS = (
    "model", "config", "seq_len", "batch", "precision", "attention", "compile", "optimizer",
    "frozen_fraction", "heads_frozen", "heads_total", "step_seconds", "step_seconds_min", "step_seconds_max",
    "tokens_per_s", "flops_fwd", "flops_bwd", "flops_total", "achieved_tflops", "peak_tflops", "peak_source",
    "mfu", "flops_saving", "time_saving", "time_per_flops_saving", "hardware", "device", "torch", "threads",
    "load_avg", "repeats", "warmup", "note",
)


# ---------------------------------------------------------------------------------- model and data
def model_config(args) -> dict:
    cfg = {
        "arch": "bert", "size": args.size, "vocab_size": args.vocab, "max_len": max(args.seq_len, 512),
        "dropout": args.dropout, "attn_dropout": args.dropout, "attn_implementation": args.attention,
    }
    for key in ("layers", "hidden", "heads", "intermediate"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    return cfg


def describe(model, args) -> str:
    c = model.config
    return (f"bert size={args.size} layers={c.num_hidden_layers} hidden={c.hidden_size} "
            f"heads={c.num_attention_heads} intermediate={c.intermediate_size} vocab={c.vocab_size} "
            f"dropout={args.dropout}")


def mlm_batch(args, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token ids, 15% of positions selected (80/10/10 as in BERT), the rest labelled -100."""
    ids = torch.randint(len(SPECIAL_IDS), args.vocab, (args.batch, args.seq_len), generator=generator)
    spec = MaskSpec(mask_id=MASK_ID, vocab_size=args.vocab, special_ids=SPECIAL_IDS)
    return mask_tokens(ids, spec, generator, prob=0.15)


def measured_flops(cfg: dict, masks: dict, inputs_shape) -> dict:
    """count_step per variant on a meta-device copy with eager attention (see the module doc)."""
    with torch.device("meta"):
        twin = build_model({**cfg, "attn_implementation": "eager"})
    pb = install_partial_backward(twin, build_partition(twin, ["head"]))
    x = torch.zeros(inputs_shape, dtype=torch.long, device="meta")
    out = {}
    for key, mask in masks.items():
        pb.set_active(mask)
        out[key] = count_step(twin, x)
    return out


# ---------------------------------------------------------------------------------- the step
def make_step(forward, inputs, labels, optimizer, opt_masks, bf16: bool):
    """One training step as the trainer takes it (`mat.train.step`), for the harness to time."""

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(bf16):
            loss, _ = objective(forward, inputs, labels, cross_entropy)
        update(loss, optimizer, opt_masks)  # opt_masks: built per step, as the trainer does

    return step


def build_optimizer(model, partition, kind: str, device: torch.device):
    """(optimizer, per-variant mask factory or None). "torch": torch.optim.AdamW (fused on CUDA);
    "mat": the trainer's masked AdamW (mat.optim), which keeps frozen heads bitwise unchanged."""
    if kind == "torch":
        return torch.optim.AdamW(model.parameters(), lr=2e-4, fused=device.type == "cuda"), None
    from mat.optim import build_optimizer as build_mat, decision_masks

    opt = build_mat({"name": "adamw", "lr": 2.0e-4}, list(model.named_parameters()))
    params = dict(model.named_parameters())

    def masks_for(active: torch.Tensor):
        decision = Decision(active, torch.ones(len(partition)))
        return lambda: decision_masks(decision, partition, params)

    return opt, masks_for


def run(args) -> list[dict]:
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    cfg = model_config(args)
    model = build_model(cfg).to(device).train()
    part = build_partition(model, ["head"])
    pb = install_partial_backward(model, part)  # all heads active: the plain op, as the trainer's vanilla
    fractions = list(dict.fromkeys(args.frozen))
    masks = {f: frozen_mask(part, f, args.seed) for f in fractions}
    flops = measured_flops(cfg, masks, (args.batch, args.seq_len))

    inputs, labels = (t.to(device) for t in mlm_batch(args, gen))
    forward = model
    if args.compile:  # the frozen set is Python state the graph is specialised on: one graph per variant
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 4 * len(fractions))
        forward = torch.compile(model)
    optimizer, masks_for = build_optimizer(model, part, args.optimizer, device)
    steps = {
        f: make_step(forward, inputs, labels, optimizer, masks_for(masks[f]) if masks_for else None,
                     args.precision == "bf16")
        for f in fractions
    }
    times, _ = round_robin(steps, repeats=args.repeats, warmup=args.warmup, seed=args.seed, device=device,
                           before=lambda f: pb.set_active(masks[f]))
    pb.remove()
    # The machine's 1-minute load average after timing: on a shared CPU, other processes' share.
    load = "" if load_avg() is None else f"{load_avg():.2f}"

    peak, peak_source = peak_tflops(device, args.precision, args.peak_tflops)
    tokens = args.batch * args.seq_len
    base = 0.0 if 0.0 in times else None
    base_t = statistics.median(times[base]) if base is not None else None
    base_f = flops[base]["fwd"] + flops[base]["bwd"] if base is not None else None
    note = ("CPU throughput measured on this machine (no GPU): not a GPU number" if device.type == "cpu"
            else "measured on this GPU")
    rows = []
    for f in fractions:
        t = statistics.median(times[f])
        fwd, bwd = flops[f]["fwd"], flops[f]["bwd"]
        achieved = (fwd + bwd) / t / 1e12
        row = {
            "model": "bert-mlm",
            "config": describe(model, args),
            "seq_len": args.seq_len,
            "batch": args.batch,
            "precision": args.precision,
            "attention": args.attention,
            "compile": int(args.compile),
            "optimizer": f"{args.optimizer} AdamW",
            "frozen_fraction": f,
            "heads_frozen": int((~masks[f]).sum()),
            "heads_total": len(part),
            "step_seconds": f"{t:.6g}",
            "step_seconds_min": f"{min(times[f]):.6g}",
            "step_seconds_max": f"{max(times[f]):.6g}",
            "tokens_per_s": f"{tokens / t:.3f}",
            "flops_fwd": fwd,
            "flops_bwd": bwd,
            "flops_total": fwd + bwd,
            "achieved_tflops": f"{achieved:.6g}",
            "peak_tflops": "" if peak is None else peak,
            "peak_source": peak_source,
            "mfu": "" if peak is None else f"{achieved / peak:.6g}",
            "flops_saving": "",
            "time_saving": "",
            "time_per_flops_saving": "",
            "hardware": hardware(device),
            "device": device.type,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "load_avg": load,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "note": note,
        }
        if base is not None and f != base:
            f_save, t_save = 1 - (fwd + bwd) / base_f, 1 - t / base_t
            row["flops_saving"] = f"{f_save:.6f}"
            row["time_saving"] = f"{t_save:.6f}"
            row["time_per_flops_saving"] = f"{t_save / f_save:.4f}" if f_save > 1e-12 else ""
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="base", help="BERT size of mat.models.bert.SIZES (default base)")
    p.add_argument("--layers", type=int, help="override the size's number of layers")
    p.add_argument("--hidden", type=int, help="override the size's hidden width")
    p.add_argument("--heads", type=int, help="override the heads (default hidden / 64)")
    p.add_argument("--intermediate", type=int, help="override the FFN width (default 4 x hidden)")
    p.add_argument("--vocab", type=int, default=30522, help="vocabulary (default 30522, the paper's)")
    p.add_argument("--seq-len", type=int, default=512, help="tokens per sequence (default 512, the paper's)")
    p.add_argument("--batch", type=int, default=8, help="sequences per step (default 8, the paper's)")
    p.add_argument("--dropout", type=float, default=0.1, help="hidden and attention dropout (default 0.1, Table 4)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"],
                   help="bf16: autocast on CUDA (refused on CPU); tf32: fp32 with TF32 matmuls (CUDA)")
    p.add_argument("--attention", default="eager", choices=["eager", "sdpa"], help="BERT's attn_implementation")
    p.add_argument("--compile", action="store_true", help="wrap the model in torch.compile")
    p.add_argument("--optimizer", default="torch", choices=["torch", "mat"],
                   help="torch: torch.optim.AdamW (fused on CUDA); mat: the trainer's masked AdamW")
    p.add_argument("--frozen", type=float, nargs="+", default=[0.0, 0.5],
                   help="fractions of each layer's heads frozen (default 0 0.5; 0 = vanilla)")
    p.add_argument("--repeats", type=int, default=20, help="timed rounds (median kept)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first (compilation happens here)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--peak-tflops", type=float, help="peak TFLOP/s for MFU (default: PEAK_TFLOPS for CUDA, none on CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "throughput.csv")
    args = p.parse_args(argv)
    if args.device == "cpu" and args.precision != "fp32":
        raise SystemExit(
            f"throughput: --precision {args.precision} is offered on CUDA only (as train.precision in the "
            "trainer: CPU autocast is slow and changes results); use --precision fp32 on CPU"
        )
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("throughput: --device cuda asked for, but torch sees no GPU")
    if any(not 0.0 <= f < 1.0 for f in args.frozen):
        raise SystemExit(f"throughput: --frozen fractions must lie in [0, 1), got {args.frozen}")
    if args.repeats < 1 or args.warmup < 0 or (args.compile and args.warmup < 1):
        raise SystemExit("throughput: need --repeats >= 1 and --warmup >= 0 (>= 1 with --compile)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.precision == "tf32":
        torch.set_float32_matmul_precision("high")
    rows = run(args)
    write_csv_atomic(args.out, rows, FIELDS)
    keys = ("frozen_fraction", "step_seconds", "tokens_per_s", "achieved_tflops", "mfu", "flops_saving",
            "time_saving", "time_per_flops_saving")
    for r in rows:
        print(", ".join(f"{k}={r[k]}" for k in keys))
    print(f"-> {args.out} ({rows[0]['hardware']}, torch {rows[0]['torch']}, {rows[0]['threads']} threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
