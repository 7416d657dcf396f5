"""Text preparation for MLM: deterministic WordPiece training, sequence layout, and the cache."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import torch

from mat.data import DataError, load_text, tokenizer
from mat.data import text as text_module

VOCAB, SEQ = 600, 32


@pytest.fixture
def loaded(wikitext_dir, tmp_path):
    return load_text(wikitext_dir, VOCAB, SEQ, cache_dir=tmp_path / "cache")


_TRAIN_IN_CHILD = """
import hashlib, sys
from mat.data import tokenizer
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
print(hashlib.sha256(tokenizer.train(lines, int(sys.argv[2])).to_str().encode()).hexdigest())
"""


def test_tokenizer_training_is_deterministic_across_processes(wikitext_dir):
    """The library's own WordPiece trainer differs from process to process (hash-map order);
    ours must not. Child processes get fresh hash seeds."""
    path = wikitext_dir / "wiki.train.tokens"
    lines = path.read_text(encoding="utf-8").splitlines()
    here = hashlib.sha256(tokenizer.train(lines, VOCAB).to_str().encode()).hexdigest()
    for _ in range(2):
        child = subprocess.run([sys.executable, "-c", _TRAIN_IN_CHILD, str(path), str(VOCAB)],
                               capture_output=True, text=True, timeout=120, check=True)
        assert child.stdout.strip() == here


def test_vocabulary_is_wordpiece_with_specials_first(wikitext_dir):
    tok = tokenizer.train((wikitext_dir / "wiki.train.tokens").read_text().splitlines(), VOCAB)
    vocab = tok.get_vocab()
    assert len(vocab) == VOCAB
    assert [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    assert any(t.startswith("##") for t in vocab) and all(not t.startswith("\ue000") for t in vocab)
    # every character seen in training exists as a word start and as a continuation
    chars = {c for t in vocab if not t.startswith("[") for c in t.removeprefix("##")}
    assert all(c in vocab and "##" + c in vocab for c in chars)


def test_too_small_vocabulary_is_refused(wikitext_dir):
    with pytest.raises(DataError, match="vocab_size 20 is too small"):
        tokenizer.train((wikitext_dir / "wiki.train.tokens").read_text().splitlines(), 20)


def test_sequences_are_cls_plus_the_token_stream(loaded, wikitext_dir):
    tok = tokenizer.load(loaded.tokenizer_path)
    assert loaded.vocab_size == VOCAB
    for split in ("train", "valid", "test"):
        seqs = getattr(loaded, split)
        assert seqs.dtype == torch.int64 and seqs.ndim == 2 and seqs.shape[1] == SEQ
        assert (seqs[:, 0] == loaded.cls_id).all() and not (seqs[:, 1:] == loaded.cls_id).any()
        assert not (seqs == loaded.pad_id).any()
    # independent reconstruction: encode the file's non-blank lines one by one, [SEP] after each
    lines = [line.replace("<unk>", "[UNK]") for line in (wikitext_dir / "wiki.valid.tokens").read_text().splitlines()
             if line.strip()]
    stream = [i for line in lines for i in tok.encode(line, add_special_tokens=False).ids + [loaded.sep_id]]
    n = len(stream) // (SEQ - 1)
    assert loaded.valid.shape[0] == n
    assert loaded.valid[:, 1:].reshape(-1).tolist() == stream[: n * (SEQ - 1)]


def test_unk_marker_becomes_the_unk_token(loaded, wikitext_dir):
    text = (wikitext_dir / "wiki.train.tokens").read_text()
    assert text.count("<unk>") > 0
    tok = tokenizer.load(loaded.tokenizer_path)
    first = next(line for line in text.splitlines() if "<unk>" in line)
    ids = tok.encode(text_module._clean(first), add_special_tokens=False).ids
    assert ids.count(loaded.unk_id) >= first.split().count("<unk>")
    assert "<" not in tok.decode(ids)


def test_cache_is_reused_and_loads_with_weights_only(wikitext_dir, tmp_path, monkeypatch, loaded):
    cache = tmp_path / "cache"
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and files[0].startswith("sequences-") and files[1].startswith("tokenizer-")
    blob = torch.load(cache / files[0], weights_only=True)
    assert torch.equal(blob["train"].long(), loaded.train)

    def refuse(*args, **kwargs):
        raise AssertionError("cache should have been used")

    monkeypatch.setattr(tokenizer, "train", refuse)
    monkeypatch.setattr(text_module, "stream", refuse)
    again = load_text(wikitext_dir, VOCAB, SEQ, cache_dir=cache)
    assert torch.equal(again.train, loaded.train) and torch.equal(again.test, loaded.test)


def test_changed_input_or_settings_rebuild_the_cache(wikitext_dir, tmp_path, loaded):
    cache = tmp_path / "cache"
    other_len = load_text(wikitext_dir, VOCAB, 16, cache_dir=cache)
    assert other_len.train.shape[1] == 16
    assert len(list(cache.glob("tokenizer-*"))) == 1  # same vocabulary: tokenizer shared
    path = wikitext_dir / "wiki.valid.tokens"
    path.write_text(path.read_text() + " A brand new closing line . \n")
    changed = load_text(wikitext_dir, VOCAB, SEQ, cache_dir=cache)
    assert changed.valid.numel() > loaded.valid.numel() or not torch.equal(changed.valid, loaded.valid)
    assert torch.equal(changed.train, loaded.train)
    assert len(list(cache.glob("sequences-*"))) == 3


def test_damaged_cache_is_rebuilt(wikitext_dir, tmp_path, loaded):
    cache = tmp_path / "cache"
    (seq_file,) = cache.glob("sequences-*")
    seq_file.write_bytes(seq_file.read_bytes()[:100])
    again = load_text(wikitext_dir, VOCAB, SEQ, cache_dir=cache)
    assert torch.equal(again.valid, loaded.valid)


def test_split_too_short_for_one_sequence(wikitext_dir, tmp_path):
    with pytest.raises(DataError, match=r"wiki\.valid\.tokens: \d+ tokens, too few for one sequence of 4000"):
        load_text(wikitext_dir, VOCAB, 4000, cache_dir=tmp_path / "c")  # train has ~6.6k tokens, valid ~2.5k


def test_default_cache_sits_in_the_data_folder(wikitext_dir):
    data = load_text(wikitext_dir, VOCAB, SEQ)
    assert data.tokenizer_path.parent == wikitext_dir / "cache"
