"""WikiText-style splits -> fixed-length token sequences for masked language modelling.

`load_text(folder, vocab_size, seq_len)`:
1. finds `wiki.{train,valid,test}.tokens` (or `.raw`) in `folder`;
2. trains a WordPiece tokenizer on the training split (see `tokenizer.py`), or reuses a cached one;
3. tokenizes each split into one stream: every non-blank line (a paragraph or a heading) in file
   order, each followed by [SEP]; WikiText's `<unk>` becomes [UNK];
4. cuts the stream into non-overlapping sequences of `seq_len`: [CLS] followed by the next
   `seq_len - 1` stream tokens. The tail shorter than that is dropped, so no [PAD] appears.

Results are cached (tokenizer JSON, and the three tensors via `torch.save`, read back with
`weights_only=True`) under keys made of the vocabulary size, the sequence length and the sha256 of
the split files, so an edited input or another setting rebuilds instead of reusing stale data.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import tokenizers
import torch

from . import fsutil, layout, tokenizer
from .errors import DataError
from .hashing import sha256_file
from .mlm import MaskSpec
from .sources import SPLITS

CACHE_FORMAT = 1
_BATCH_LINES = 4096


@dataclass
class TextData:
    """Token sequences of the three splits, and the ids a masked LM needs."""

    train: torch.Tensor  # int64 [n_seq, seq_len]; column 0 is [CLS]
    valid: torch.Tensor
    test: torch.Tensor
    vocab_size: int
    pad_id: int
    unk_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    tokenizer_path: Path

    @property
    def special_ids(self) -> tuple[int, ...]:
        return (self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id)

    @property
    def mask_spec(self) -> MaskSpec:
        return MaskSpec(mask_id=self.mask_id, vocab_size=self.vocab_size, special_ids=self.special_ids)


def _key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _clean(line: str) -> str:
    return line.replace("<unk>", "[UNK]")


def load_text(data_dir: str | Path, vocab_size: int, seq_len: int, cache_dir: str | Path | None = None) -> TextData:
    """Tokenized train/valid/test sequences of the WikiText-layout folder `data_dir`.

    cache_dir defaults to `data_dir/cache`; pass another folder if `data_dir` is read-only.
    """
    if seq_len < 2:
        raise DataError(f"seq_len must be at least 2 ([CLS] plus one token), got {seq_len}")
    data_dir = Path(data_dir)
    paths = layout.find_text_splits(data_dir)
    hashes = {s: sha256_file(p) for s, p in paths.items()}
    cache = Path(cache_dir) if cache_dir is not None else data_dir / "cache"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create cache folder {cache} ({exc.strerror or exc}); pass cache_dir") from None

    tok_key = _key({"format": CACHE_FORMAT, "tokenizers": tokenizers.__version__,
                    "vocab_size": vocab_size, "train": hashes["train"]})
    tok_path = cache / f"tokenizer-{tok_key}.json"
    tok = _cached_tokenizer(tok_path, paths["train"], vocab_size)
    ids = tokenizer.special_ids(tok)

    seq_key = _key({"tokenizer": tok_key, "seq_len": seq_len, "splits": hashes})
    seq_path = cache / f"sequences-{seq_key}.pt"
    tensors = _cached_sequences(seq_path, tok, paths, seq_len, ids)
    return TextData(train=tensors["train"], valid=tensors["valid"], test=tensors["test"],
                    vocab_size=tok.get_vocab_size(), pad_id=ids["[PAD]"], unk_id=ids["[UNK]"],
                    cls_id=ids["[CLS]"], sep_id=ids["[SEP]"], mask_id=ids["[MASK]"], tokenizer_path=tok_path)


def _cached_tokenizer(path: Path, train_path: Path, vocab_size: int):
    if path.is_file():
        try:
            return tokenizer.load(path)
        except DataError:
            pass  # a damaged cache entry is rebuilt, not trusted
    lines = (line.replace("<unk>", " ") for line in tokenizer.iter_lines([train_path]))
    tok = tokenizer.train(lines, vocab_size)
    tokenizer.save(tok, path)
    return tok


def _cached_sequences(path: Path, tok, paths: dict[str, Path], seq_len: int, ids: dict[str, int]) -> dict:
    if path.is_file():
        loaded = _load_sequences(path, seq_len)
        if loaded is not None:
            return loaded
    out = {s: sequences(stream(tok, paths[s], ids["[SEP]"]), seq_len, ids["[CLS]"], f"{paths[s]}") for s in SPLITS}
    buf = io.BytesIO()
    # int32 on disk halves the cache; the trainer gets int64 as embeddings expect
    torch.save({"format": CACHE_FORMAT, "seq_len": seq_len, **{s: t.to(torch.int32) for s, t in out.items()}}, buf)
    fsutil.write_bytes_atomic(path, [buf.getvalue()])
    return out


def _load_sequences(path: Path, seq_len: int) -> dict | None:
    try:
        blob = torch.load(path, weights_only=True)
    except Exception:  # truncated or foreign file: rebuild
        return None
    if not isinstance(blob, dict) or blob.get("format") != CACHE_FORMAT or blob.get("seq_len") != seq_len:
        return None
    out = {}
    for s in SPLITS:
        t = blob.get(s)
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[1] != seq_len:
            return None
        out[s] = t.to(torch.int64)
    return out


def stream(tok, path: Path, sep_id: int) -> torch.Tensor:
    """The token ids of one split file: each non-blank line, then [SEP].

    `encode_batch_fast` (the library's batch encoding without character offsets, in parallel
    threads) gives the same ids as `encode_batch` with less work per token; WikiText-103's
    ~100M words make that count (benchmarks/data_prep.py)."""
    parts: list[np.ndarray] = []
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    with open(path, encoding="utf-8") as fh:
        lines = (_clean(line) for line in fh if line.strip())
        while batch := list(islice(lines, _BATCH_LINES)):
            for enc in encode(batch, add_special_tokens=False):
                parts.append(np.asarray(enc.ids + [sep_id], dtype=np.int64))
    if not parts:
        return torch.zeros(0, dtype=torch.int64)
    return torch.from_numpy(np.concatenate(parts))


def sequences(ids: torch.Tensor, seq_len: int, cls_id: int, label: str = "split") -> torch.Tensor:
    """Cut a stream into [n, seq_len] rows of [CLS] + `seq_len - 1` consecutive tokens."""
    body = seq_len - 1
    n = ids.numel() // body
    if n == 0:
        raise DataError(f"{label}: {ids.numel()} tokens, too few for one sequence of {seq_len}")
    rows = ids[: n * body].view(n, body)
    return torch.cat([torch.full((n, 1), cls_id, dtype=torch.int64), rows], dim=1)
