"""A WordPiece tokenizer trained on a training split, deterministically.

`tokenizers`' own WordPieceTrainer is not deterministic: it numbers the continuation pieces
(`##e`, ...) in hash-map order, and equal-count merges are then broken by those numbers, so two
runs on the same text can learn different vocabularies (measured with tokenizers 0.23.3: same
corpus, same settings, a different vocabulary in almost every process). Its BPE trainer *without* a
continuation prefix is deterministic (alphabet sorted by code point, ties broken by those ids). So
we mark word starts with a private-use character, train BPE on that, and convert the result to a
WordPiece vocabulary: a piece that starts with the marker is a word-initial piece, any other piece
gets the `##` prefix, and every alphabet character exists in both forms (as WordPiece requires).
Encoding then uses the library's WordPiece model, which is deterministic.

Special tokens take ids 0..4 in the order [PAD] [UNK] [CLS] [SEP] [MASK]. Text is cased; the
normaliser is BERT's without lower-casing or accent stripping (WikiText is cased).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from . import fsutil
from .errors import DataError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PREFIX = "##"
_WORD_START = "\ue000"  # private use: never in real text (stripped from the input to be sure)
_MAX_ROUNDS = 6


def _normalizer():
    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                      strip_accents=False, lowercase=False)


def _bpe_vocab(lines: list[str], size: int) -> list[str]:
    """BPE pieces (word starts marked) in id order; deterministic for a given input."""
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = _normalizer()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.BertPreTokenizer(),
        pre_tokenizers.Metaspace(replacement=_WORD_START, prepend_scheme="always", split=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=[], show_progress=False)
    bpe.train_from_iterator(lines, trainer)
    vocab = bpe.get_vocab()
    return sorted(vocab, key=vocab.get)


def _to_wordpiece(pieces: list[str]) -> list[str]:
    """Specials, then every character in both forms, then merged pieces in merge order."""
    alphabet = [p for p in pieces if len(p) == 1 and p != _WORD_START]
    out = list(SPECIAL_TOKENS) + alphabet + [PREFIX + c for c in alphabet]
    seen = set(out)
    for piece in pieces:
        if len(piece) == 1:
            continue
        token = piece[1:] if piece.startswith(_WORD_START) else PREFIX + piece
        if token and token not in seen:
            seen.add(token)
            out.append(token)
    return out


def train(lines: Iterable[str], vocab_size: int) -> Tokenizer:
    """Train on `lines` (the training split); the vocabulary has exactly `vocab_size` entries
    unless the text has fewer distinct pieces to offer.

    One BPE training pass over the corpus serves every step below: BPE learns its merges greedily
    in order, so a training to size N is the first N pieces of any training to a larger size. The
    alphabet, the first request and each retry are read as prefixes of one training to
    `vocab_size` pieces (the most any step below asks for unless the conversion loses more than
    the alphabet's size), retrained larger only if a retry needs more. On WikiText-103 each pass
    counts ~100M words, so this is 2-3x faster than training once per request, with the same
    vocabulary (tests/test_data_prep.py compares with the one-training-per-request version)."""
    text = [line.replace(_WORD_START, " ") for line in lines if line.strip()]
    if not text:
        raise DataError("cannot train a tokenizer on an empty training split")
    trained = {"size": max(vocab_size, 1), "pieces": _bpe_vocab(text, max(vocab_size, 1))}
    alphabet = sum(1 for p in trained["pieces"] if len(p) == 1)  # BPE never goes below its alphabet

    def bpe(size: int) -> list[str]:
        """`_bpe_vocab(text, size)`, as a prefix of the longest training so far."""
        pieces = trained["pieces"]
        if size > len(pieces) and len(pieces) == trained["size"]:  # the corpus may offer more
            trained["size"], trained["pieces"] = size, _bpe_vocab(text, size)
            pieces = trained["pieces"]
        return pieces[:max(size, alphabet)]

    floor = len(SPECIAL_TOKENS) + 2 * (alphabet - 1)
    if vocab_size < floor:
        raise DataError(f"vocab_size {vocab_size} is too small: the training text has {alphabet - 1} "
                        f"distinct characters, so at least {floor} entries are needed")
    # Merges that only re-create a word-initial character collapse in the conversion, so the
    # WordPiece vocabulary can come out short; ask for the shortfall and retrain (never overshoots:
    # each extra merge adds at most one token).
    bpe_size = vocab_size - (alphabet - 1) - len(SPECIAL_TOKENS) + 1
    vocab = _to_wordpiece(bpe(bpe_size))
    for _ in range(_MAX_ROUNDS):
        if len(vocab) >= vocab_size:
            break
        bpe_size += vocab_size - len(vocab)
        longer = _to_wordpiece(bpe(bpe_size))
        if len(longer) == len(vocab):  # the corpus has nothing more to merge
            break
        vocab = longer
    return build(vocab[:vocab_size])


def build(vocab: list[str]) -> Tokenizer:
    """A WordPiece tokenizer over `vocab` (specials first), with BERT's pre-tokenisation."""
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]",
                                     continuing_subword_prefix=PREFIX, max_input_chars_per_word=100))
    tok.normalizer = _normalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix=PREFIX)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return tok


def save(tok: Tokenizer, path: Path) -> None:
    fsutil.write_bytes_atomic(path, [tok.to_str(pretty=True).encode("utf-8")])


def load(path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the library raises a bare Exception on malformed files
        raise DataError(f"{path}: not a tokenizer file ({exc})") from None


def special_ids(tok: Tokenizer) -> dict[str, int]:
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    if list(ids.values()) != list(range(len(SPECIAL_TOKENS))):
        raise DataError(f"tokenizer special tokens must have ids 0..4 in order {SPECIAL_TOKENS}, got {ids}")
    return ids


def iter_lines(paths: Iterable[Path]) -> Iterator[str]:
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            yield from fh
