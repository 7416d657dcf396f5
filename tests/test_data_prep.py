"""The tokenizer's one-pass training (mat.data.tokenizer.train) learns exactly the vocabulary of the
one-training-per-request version it replaced, so the pipeline's encoded data are bitwise unchanged;
and the data-preparation benchmark's corpus has WikiText's layout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from mat.data import tokenizer
from mat.data.tokenizer import SPECIAL_TOKENS, _MAX_ROUNDS, _WORD_START, _bpe_vocab, _to_wordpiece, build


def reference_train(lines, vocab_size):
    """The previous `tokenizer.train`: one BPE training per request (alphabet, first size, retries)."""
    text = [line.replace(_WORD_START, " ") for line in lines if line.strip()]
    alphabet = len(_bpe_vocab(text, 1))
    bpe_size = vocab_size - (alphabet - 1) - len(SPECIAL_TOKENS) + 1
    vocab = _to_wordpiece(_bpe_vocab(text, bpe_size))
    for _ in range(_MAX_ROUNDS):
        if len(vocab) >= vocab_size:
            break
        bpe_size += vocab_size - len(vocab)
        longer = _to_wordpiece(_bpe_vocab(text, bpe_size))
        if len(longer) == len(vocab):
            break
        vocab = longer
    return build(vocab[:vocab_size])


def _lines(folder: Path) -> list[str]:
    return [line.replace("<unk>", " ") for line in (folder / "wiki.train.tokens").read_text().splitlines()]


@pytest.mark.parametrize("vocab_size", [200, 1000, 2000, 30522])
def test_one_pass_training_learns_the_same_vocabulary(tiny_text_dir, vocab_size):
    # 200: the floor region; 1000: the tiny profile's; 2000 / 30522: more than the corpus offers
    lines = _lines(Path(tiny_text_dir))
    assert tokenizer.train(lines, vocab_size).get_vocab() == reference_train(lines, vocab_size).get_vocab()


def test_one_pass_training_matches_on_a_wikitext_like_corpus(tmp_path):
    spec = importlib.util.spec_from_file_location("data_prep", Path(__file__).parents[1] / "benchmarks" / "data_prep.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    paths = bench.write_corpus(tmp_path / "wt", 60_000, 5_000)
    text = paths["train"].read_text()
    assert text.startswith(" \n = ") and " = = " in text  # WikiText's headings and subheadings
    lines = [line.replace("<unk>", " ") for line in text.splitlines()]
    for size in (3000, 8000):
        assert tokenizer.train(lines, size).get_vocab() == reference_train(lines, size).get_vocab()


def test_tiny_pipeline_sequences_are_bitwise_unchanged(tiny_text_dir, tmp_path, monkeypatch):
    """One-pass training and offset-free batch encoding give the previous pipeline's tensors."""
    from tokenizers import Tokenizer

    from mat.data.text import load_text

    new = load_text(tiny_text_dir, 1000, 32, cache_dir=tmp_path / "new")
    monkeypatch.setattr(tokenizer, "train", reference_train)
    monkeypatch.delattr(Tokenizer, "encode_batch_fast")  # the previous encoding: encode_batch
    old = load_text(tiny_text_dir, 1000, 32, cache_dir=tmp_path / "old")
    for split in ("train", "valid", "test"):
        assert torch.equal(getattr(new, split), getattr(old, split))
    assert new.vocab_size == old.vocab_size
