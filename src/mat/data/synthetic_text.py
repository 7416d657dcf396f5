"""A generated corpus in WikiText's layout, for runs with no data on disk (the `tiny` profile).

It has to be learnable by a small masked language model within minutes on a CPU, so it is built
from structure a model can pick up at every range:
- local: a probabilistic grammar (determiner - adjective - noun - verb - object, prepositional
  phrases) with Zipf-distributed word choice, so frequent patterns dominate;
- agreement: the verb form and the determiner follow the subject's number ("the dogs run", "a dog
  runs"), a dependency that can span a prepositional phrase;
- collocations: each verb prefers some objects, each noun some adjectives;
- topic: every article draws most content words from its own topic's subset, so context across
  sentences helps;
- noise: a few random words and `<unk>` tokens, as in WikiText.
The layout matches WikiText's tokenized files (one paragraph per line, ` = Title = ` headings,
` = = Section = = ` subheadings, blank lines between, tokens separated by single spaces), so the
same reader and tokenizer handle both. The same seed gives byte-identical files on any machine:
only Python's `random` seeded from a string is used (stable across versions and platforms).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from . import fsutil
from .sources import SPLITS, text_files

DEFAULT_TRAIN_TOKENS = 200_000

_CONSONANTS = "ptkbdgmnlrsvzfh"
_VOWELS = "aeiou"
_DET_SINGULAR = ("the", "a", "this", "every", "its")
_DET_PLURAL = ("the", "these", "some", "many", "its")
_PREPOSITIONS = ("of", "in", "on", "with", "from", "near", "under")
_CONJUNCTIONS = ("and", "but", "while")
_N_TOPICS = 16
_NOISE_P = 0.02  # a content word replaced by any word of the lexicon
_UNK_P = 0.012  # a content word replaced by <unk>


def _zipf(n: int, exponent: float = 1.07) -> list[float]:
    return list(accumulate(1.0 / (rank + 1) ** exponent for rank in range(n)))


class _Choice:
    """A Zipf-weighted choice from a fixed list (rank order = list order)."""

    def __init__(self, items: list[str]):
        self.items = items
        self.cum = _zipf(len(items))

    def __call__(self, rng: random.Random) -> str:
        return rng.choices(self.items, cum_weights=self.cum)[0]


@dataclass
class _Lexicon:
    nouns: list[str]
    verbs: list[str]
    adjectives: list[str]
    adverbs: list[str]
    names: list[str]
    objects: dict[str, list[str]]  # verb -> preferred objects
    modifiers: dict[str, list[str]]  # noun -> preferred adjectives
    topics: list[dict[str, _Choice]]

    @property
    def all_words(self) -> list[str]:
        return self.nouns + self.verbs + self.adjectives + self.adverbs + self.names


def _lexicon(seed: int) -> _Lexicon:
    rng = random.Random(f"mat-tiny-text:{seed}:lexicon")
    reserved = set(_DET_SINGULAR + _DET_PLURAL + _PREPOSITIONS + _CONJUNCTIONS + ("is", "are", "that", "in"))
    seen: set[str] = set()

    def words(n: int, syllables: tuple[int, int]) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            w = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) + (rng.choice(_CONSONANTS) if rng.random() < 0.3 else "")
                        for _ in range(rng.randint(*syllables)))
            # forms derived by suffix must stay distinct from every other word
            if w in seen or w in reserved or w.endswith("s") or w + "s" in seen:
                continue
            seen.add(w)
            out.append(w)
        return out

    nouns, verbs = words(800, (1, 3)), words(200, (1, 2))
    adjectives, adverbs = words(150, (2, 3)), [w + "ly" for w in words(40, (1, 2))]
    names = [w.capitalize() for w in words(120, (2, 3))]
    objects = {v: rng.sample(nouns[:300], 6) for v in verbs}
    modifiers = {n: rng.sample(adjectives, 2) for n in nouns}
    topics = []
    for _ in range(_N_TOPICS):
        topics.append({
            "noun": _Choice(rng.sample(nouns, 40)),
            "verb": _Choice(rng.sample(verbs, 12)),
            "adjective": _Choice(rng.sample(adjectives, 10)),
            "name": _Choice(rng.sample(names, 6)),
        })
    return _Lexicon(nouns, verbs, adjectives, adverbs, names, objects, modifiers, topics)


class _Writer:
    """Generates the sentences of one split, following the grammar in the module docstring."""

    def __init__(self, lex: _Lexicon, rng: random.Random):
        self.lex, self.rng = lex, rng
        self.noun, self.verb = _Choice(lex.nouns), _Choice(lex.verbs)
        self.adjective, self.adverb = _Choice(lex.adjectives), _Choice(lex.adverbs)
        self.name = _Choice(lex.names)
        self.topic = lex.topics[0]
        self.everything = lex.all_words

    def content(self, kind: str) -> str:
        r = self.rng.random()
        if r < _UNK_P:
            return "<unk>"
        if r < _UNK_P + _NOISE_P:
            return self.rng.choice(self.everything)
        if kind in self.topic and self.rng.random() < 0.75:
            return self.topic[kind](self.rng)
        return getattr(self, kind)(self.rng)

    def noun_phrase(self, plural: bool, depth: int, head: str | None = None) -> list[str]:
        rng = self.rng
        if not plural and head is None and rng.random() < 0.15:
            return [self.content("name")]
        noun = head or self.content("noun")
        words = [rng.choice(_DET_PLURAL if plural else _DET_SINGULAR)]
        if rng.random() < 0.4:
            preferred = self.lex.modifiers.get(noun)
            words.append(rng.choice(preferred) if preferred and rng.random() < 0.6 else self.content("adjective"))
        words.append(noun + "s" if plural and noun != "<unk>" else noun)
        if depth < 1 and rng.random() < 0.25:
            words += [rng.choice(_PREPOSITIONS)] + self.noun_phrase(rng.random() < 0.3, depth + 1)
        return words

    def clause(self) -> list[str]:
        rng = self.rng
        plural = rng.random() < 0.35
        words = self.noun_phrase(plural, 0)
        r = rng.random()
        if r < 0.15:  # copula + adjective, agreeing in number
            return words + ["are" if plural else "is", self.content("adjective")]
        verb = self.content("verb")
        words.append(verb if plural or verb == "<unk>" else verb + "s")
        if r < 0.25:
            return words + [self.content("adverb")]
        preferred = self.lex.objects.get(verb)
        head = rng.choice(preferred) if preferred and rng.random() < 0.5 else None
        words += self.noun_phrase(rng.random() < 0.3, 0, head)
        if rng.random() < 0.2:
            words += [rng.choice(_PREPOSITIONS)] + self.noun_phrase(rng.random() < 0.3, 1)
        return words

    def sentence(self) -> list[str]:
        rng = self.rng
        words: list[str] = []
        if rng.random() < 0.08:  # dates and numbers in WikiText's escaped style
            year = rng.randint(1700, 2020)
            words += ["in", str(year), ","]
        words += self.clause()
        if rng.random() < 0.15:
            words += [",", rng.choice(_CONJUNCTIONS)] + self.clause()
        if rng.random() < 0.05:
            words += ["with", str(rng.randint(1, 9)), "@,@", f"{rng.randint(0, 999):03d}", self.content("noun") + "s"]
        words[0] = words[0][:1].upper() + words[0][1:] if words[0] != "<unk>" else words[0]
        return words + ["."]

    def heading(self, level: int) -> str:
        count = self.rng.randint(1, 3)
        if level == 1:
            title = [self.content("name").capitalize() for _ in range(count)]
        else:
            title = [self.content("noun").capitalize() for _ in range(count)]
        marks = " ".join(["="] * level)
        return f" {marks} {' '.join(title)} {marks} "

    def article(self) -> tuple[list[str], int]:
        """(lines, number of tokens) of one article on one topic."""
        rng = self.rng
        self.topic = rng.choice(self.lex.topics)
        lines = [" ", self.heading(1), " "]
        tokens = len(lines[1].split())
        for index in range(rng.randint(2, 6)):
            if index and rng.random() < 0.35:
                lines += [self.heading(2), " "]
                tokens += len(lines[-2].split())
            paragraph = [w for _ in range(rng.randint(2, 7)) for w in self.sentence()]
            lines += [" " + " ".join(paragraph) + " ", " "]
            tokens += len(paragraph)
        return lines, tokens


def split_lines(seed: int, split: str, n_tokens: int) -> list[str]:
    """The lines (without newlines) of one split: whole articles until `n_tokens` is reached."""
    writer = _Writer(_lexicon(seed), random.Random(f"mat-tiny-text:{seed}:{split}"))
    lines: list[str] = []
    total = 0
    while total < n_tokens:
        article, count = writer.article()
        lines += article[1:] if lines else article  # one blank line between articles
        total += count
    return lines


def generate(folder: Path, seed: int = 0, train_tokens: int = DEFAULT_TRAIN_TOKENS,
             eval_tokens: int | None = None) -> dict[str, Path]:
    """Write wiki.{train,valid,test}.tokens into `folder`; valid/test default to 10% of train each."""
    if train_tokens < 1000:
        raise ValueError(f"train_tokens must be at least 1000, got {train_tokens}")
    eval_tokens = max(1000, train_tokens // 10) if eval_tokens is None else eval_tokens
    folder = Path(folder)
    out = {}
    for split, name in zip(SPLITS, text_files(False)):
        n = train_tokens if split == "train" else eval_tokens
        text = "\n".join(split_lines(seed, split, n)) + "\n"
        fsutil.write_bytes_atomic(folder / name, [text.encode("utf-8")])
        out[split] = folder / name
    return out
