"""Data preparation at the real datasets' size: time and peak memory of the pipeline's own steps.

Text (WikiText-103's size): a generated corpus of `--words` training words (default 103,227,021,
WikiText-103's documented count; valid and test 217,646 and 245,569 words) in WikiText's tokenized
layout (` = Title = ` headings, ` = = Section = = ` subheadings, one paragraph per line, blank lines
between, `<unk>` tokens), with a WikiText-like vocabulary (267,735 distinct words, Zipf-distributed,
as in Merity et al. 2016, Table 1), goes through `mat.data.load_text` -- the same WordPiece training
(`mat.data.tokenizer.train`, vocabulary 30522) and encoding into sequences (seq 512) the trainer
uses. Timed in two stages: tokenizer training, then encoding + sequencing + cache write.

Images (CIFAR-10's size): 60,000 generated images written as CIFAR-10's python archive
(`cifar-10-python.tar.gz`: 5 training batches + a test batch + batches.meta, mat.data.synthetic_images),
then `mat.data.get("cifar10", source=archive)` -- extraction and verification as for the real
download -- and `mat.data.load_images`, the trainer's loader. The generated archive's md5 is not
CIFAR-10's, so the benchmark pins its own (`sources.ARCHIVE_MD5`, in this process only): the check runs
at the real cost (hashing the archive), and extraction, the image-count checks and the manifest follow
as for the real archive.

Each measurement runs in a fresh subprocess; peak memory is that process's RSS high-water mark.

    python benchmarks/data_prep.py --out benchmarks/results/data_prep.csv [--fraction 0.25] [--kind text,images]

`--fraction f` scales the text corpus (words x f; the vocabulary too, by Heaps' law, x f^0.5); rows
record it, and rows with f < 1 carry a linear extrapolation to f = 1, labelled as such (time / f; memory: the
process's RSS after its imports + the rest / f).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mat.bench import child as child_process

WT103_TRAIN_WORDS = 103_227_021
WT103_EVAL_WORDS = {"valid": 217_646, "test": 245_569}
WT103_VOCAB = 267_735
COLUMNS = ("dataset", "stage", "fraction", "words_or_images", "seconds", "cpu_seconds", "peak_rss_gb",
           "extrapolated_seconds", "extrapolated_peak_rss_gb", "machine", "notes")


def _lexicon(n: int, rng: np.random.Generator) -> list[str]:
    """`n` distinct pronounceable words (syllables), a few capitalised and some with digits."""
    cons, vows = list("ptkbdgmnlrsvzfhwjc"), list("aeiouy")
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        k = rng.integers(1, 5, size=4096)
        for syl in k:
            w = "".join(rng.choice(cons) + rng.choice(vows) for _ in range(int(syl)))
            if w not in seen:
                seen.add(w)
                out.append(w if rng.random() > 0.15 else w.capitalize())
            if len(out) >= n:
                break
    punct = [",", ".", "the", "of", "and", "in", "to", "a", "@-@", "@,@", "(", ")", "\"", "<unk>"]
    return punct + out


def write_corpus(folder: Path, words: int, vocab: int, seed: int = 0) -> dict[str, Path]:
    """wiki.{train,valid,test}.tokens of `words` training words in WikiText's layout."""
    rng = np.random.default_rng(seed)
    lex = np.array(_lexicon(vocab, rng), dtype=object)
    ranks = np.arange(1, len(lex) + 1, dtype=np.float64)
    cdf = np.cumsum(1.0 / ranks ** 1.05)
    cdf /= cdf[-1]
    paths = {}
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", words), *WT103_EVAL_WORDS.items()):
        path = folder / f"wiki.{split}.tokens"
        with open(path, "w", encoding="utf-8") as fh:
            left, article = n, 0
            while left > 0:
                # an article: a title, ~3600 words in sections of paragraphs of ~120 words
                fh.write(f" \n = {lex[rng.integers(20, 5000)].capitalize()} {article} = \n \n")
                body = min(left, 3600)
                ids = np.minimum(np.searchsorted(cdf, rng.random(body)), len(lex) - 1)
                toks = lex[ids].tolist()
                for start in range(0, body, 120):
                    if start and start % 1200 == 0:
                        fh.write(f" = = {toks[start].capitalize()} = = \n \n")
                    fh.write(" " + " ".join(toks[start:start + 120]) + " \n")
                fh.write(" \n")
                left -= body
                article += 1
        paths[split] = path
    return paths


def _cpu() -> float:
    """CPU seconds of this process, every thread (the library tokenizes in parallel threads):
    on a shared machine this, not the wall time, says what the work costs."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _stage_text(folder: str, vocab_size: int, seq_len: int) -> dict:
    """What `mat.data.load_text` does on a fresh cache, stage by stage, with its own functions:
    tokenizer training on the training split (as `_cached_tokenizer`), then each split encoded and
    cut into sequences (as `_cached_sequences`)."""
    from mat.data import layout, text, tokenizer
    from mat.data.sources import SPLITS

    base = _peak_gb()  # after the imports
    paths = layout.find_text_splits(Path(folder))
    t0, c0 = time.perf_counter(), _cpu()
    lines = (line.replace("<unk>", " ") for line in tokenizer.iter_lines([paths["train"]]))
    tok = tokenizer.train(lines, vocab_size)
    train_s, train_cpu = time.perf_counter() - t0, _cpu() - c0
    train_peak = _peak_gb()
    ids = tokenizer.special_ids(tok)
    t1, c1 = time.perf_counter(), _cpu()
    out = {s: text.sequences(text.stream(tok, paths[s], ids["[SEP]"]), seq_len, ids["[CLS]"], s) for s in SPLITS}
    encode_s, encode_cpu = time.perf_counter() - t1, _cpu() - c1
    return {"base": base, "tokenizer_seconds": train_s, "tokenizer_peak": train_peak, "encode_seconds": encode_s,
            "tokenizer_cpu": train_cpu, "encode_cpu": encode_cpu,
            "load_text_seconds": train_s + encode_s, "peak": _peak_gb(), "sequences": int(out["train"].shape[0]),
            "vocab": tok.get_vocab_size()}


def _stage_images_write(folder: str) -> dict:
    """60,000 generated images written as CIFAR-10's python archive (not part of the preparation)."""
    import tarfile

    from mat.data import synthetic_images

    folder = Path(folder)
    t0, c0 = time.perf_counter(), _cpu()
    synthetic_images.generate(folder / "raw", 0, 50_000, 10_000)
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder / "raw" / synthetic_images.CIFAR_DIR, arcname=synthetic_images.CIFAR_DIR)
    return {"seconds": time.perf_counter() - t0, "cpu": _cpu() - c0, "peak": _peak_gb(),
            "bytes": (folder / "cifar-10-python.tar.gz").stat().st_size}


def _stage_images(folder: str) -> dict:
    """`mat.data.get("cifar10", source=archive)` on the generated archive, then `load_images`."""
    import hashlib

    from mat.data import acquire, sources
    from mat.data.images import load_images

    folder = Path(folder)
    archive = folder / "cifar-10-python.tar.gz"
    # a generated archive is not CIFAR-10: pin its md5 instead of the real one (this process only), so
    # that get() checks, extracts and verifies it exactly as it would the download
    sources.ARCHIVE_MD5["cifar10"] = {archive.name: hashlib.md5(archive.read_bytes()).hexdigest()}
    t1, c1 = time.perf_counter(), _cpu()
    acquire.get("cifar10", folder / "cifar10", source=str(archive))
    get_s, get_cpu, get_peak = time.perf_counter() - t1, _cpu() - c1, _peak_gb()
    t2, c2 = time.perf_counter(), _cpu()
    images = load_images(folder / "cifar10")
    return {"get_seconds": get_s, "get_cpu": get_cpu, "get_peak": get_peak,
            "load_seconds": time.perf_counter() - t2, "load_cpu": _cpu() - c2, "peak": _peak_gb(),
            "images": int(images.train_x.shape[0] + images.test_x.shape[0])}


def _child(args: argparse.Namespace) -> int:
    if args.stage == "text":
        child_process.report(_stage_text(args.folder, args.vocab_size, args.seq_len))
    elif args.stage == "images-write":
        child_process.report(_stage_images_write(args.folder))
    else:
        child_process.report(_stage_images(args.folder))
    return 0


def _machine() -> str:
    import torch

    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical cores), torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/data_prep.csv")
    parser.add_argument("--fraction", type=float, default=1.0, help="text corpus size as a fraction of WikiText-103's")
    parser.add_argument("--kind", default="text,images")
    parser.add_argument("--work", help="scratch folder (default: a temporary one, removed after)")
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    kinds = args.kind.split(",")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        machine = _machine()
        f = args.fraction
        if "text" in kinds:
            words = int(WT103_TRAIN_WORDS * f)
            t0 = time.perf_counter()
            write_corpus(Path(tmp) / "wt", words, int(WT103_VOCAB * f ** 0.5))
            gen_s = time.perf_counter() - t0
            r = child_process.run(__file__, "--stage", "text", "--folder", str(Path(tmp) / "wt"),
                           "--vocab-size", str(args.vocab_size), "--seq-len", str(args.seq_len))
            note = f"generated corpus ({gen_s:.0f} s to write, not counted), vocab {r['vocab']}, {r['sequences']} train sequences of {args.seq_len}"
            for stage, s, cpu, peak in (
                    ("tokenizer training", r["tokenizer_seconds"], r["tokenizer_cpu"], r["tokenizer_peak"]),
                    ("encode + sequences", r["encode_seconds"], r["encode_cpu"], r["peak"]),
                    ("load_text total (train + encode)", r["load_text_seconds"], r["tokenizer_cpu"] + r["encode_cpu"], r["peak"])):
                rows.append({"dataset": "wikitext103-size", "stage": stage, "fraction": f, "words_or_images": words,
                             "seconds": round(s, 1), "cpu_seconds": round(cpu, 1), "peak_rss_gb": round(peak, 2),
                             "extrapolated_seconds": round(s / f, 0) if f < 1 else "",
                             "extrapolated_peak_rss_gb": round(r["base"] + (peak - r["base"]) / f, 2) if f < 1 else "",
                             "machine": machine, "notes": note + ("; extrapolated linearly to f = 1 (an estimate, not measured)" if f < 1 else "")})
        if "images" in kinds:
            w = child_process.run(__file__, "--stage", "images-write", "--folder", tmp)
            r = child_process.run(__file__, "--stage", "images", "--folder", tmp)
            checked = ("archive md5 (pinned to the generated archive's), extraction, image counts and manifest "
                       "as for the real download")
            for stage, s, cpu, peak, note in (
                    ("write archive (generated, not counted in prep)", w["seconds"], w["cpu"], w["peak"],
                     f"{w['bytes'] / 1e6:.0f} MB archive in CIFAR-10's python format; its own process"),
                    ("mat data get cifar10 --source archive", r["get_seconds"], r["get_cpu"], r["get_peak"], checked),
                    ("load_images", r["load_seconds"], r["load_cpu"], r["peak"], "the trainer's loader, after get (same process)")):
                rows.append({"dataset": "cifar10-size", "stage": stage, "fraction": 1, "words_or_images": r["images"],
                             "seconds": round(s, 1), "cpu_seconds": round(cpu, 1), "peak_rss_gb": round(peak, 2),
                             "extrapolated_seconds": "", "extrapolated_peak_rss_gb": "", "machine": machine, "notes": note})
    out = Path(args.out)
    old = list(csv.DictReader(open(out))) if out.is_file() else []
    keep = [o for o in old if not any(o["dataset"] == n["dataset"] and o["stage"] == n["stage"]
                                      and float(o["fraction"]) == float(n["fraction"]) for n in rows)]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.tmp")
    with open(tmp_out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(keep + rows)
    os.replace(tmp_out, out)
    for r in rows:
        print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
