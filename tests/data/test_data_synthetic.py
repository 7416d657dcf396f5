"""The generated datasets of the `tiny` profile: WikiText / CIFAR-10 layouts, determinism
(byte-identical files per seed), and learnable structure (measured against chance)."""

from __future__ import annotations

import collections
import math
import pickle
import re

import numpy as np
import pytest
import torch

from mat.data import get, load_images, synthetic_images


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory):
    return get("tiny-text", tmp_path_factory.mktemp("tt") / "out", seed=0, size=60_000)


def test_text_is_byte_identical_per_seed_and_differs_across_seeds(tmp_path, tiny_text):
    again = get("tiny-text", tmp_path / "again", seed=0, size=60_000)
    other = get("tiny-text", tmp_path / "other", seed=1, size=60_000)
    for name in ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens", "mat-data.json"):
        assert (again / name).read_bytes() == (tiny_text / name).read_bytes()
    assert (other / "wiki.train.tokens").read_bytes() != (tiny_text / "wiki.train.tokens").read_bytes()


def test_text_has_wikitext_layout_and_requested_size(tiny_text):
    lines = (tiny_text / "wiki.train.tokens").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and lines[0] == " "  # ends with a newline, starts with a blank line
    lines = lines[:-1]
    assert all(line.startswith(" ") and line.endswith(" ") for line in lines)
    assert all(line == " " for line in lines[::2])  # blank lines between every content line
    content = lines[1::2]
    titles = [line for line in content if re.fullmatch(r" = [^=]+ = ", line)]
    sections = [line for line in content if re.fullmatch(r" = = [^=]+ = = ", line)]
    paragraphs = [line for line in content if not line.startswith(" = ")]
    assert len(titles) > 20 and len(sections) > 10 and len(paragraphs) > 5 * len(titles) / 2
    words = " ".join(content).split()
    assert 60_000 <= len(words) < 61_000
    assert 0.002 < words.count("<unk>") / len(words) < 0.03
    assert all("  " not in line.strip() for line in paragraphs)  # single spaces between tokens
    valid = (tiny_text / "wiki.valid.tokens").read_text().split()
    assert 6000 <= len(valid) < 7000  # 10% of train by default


def _perplexities(train: list[str], valid: list[str]) -> tuple[float, float, int]:
    """Unigram (add-one) and interpolated bigram perplexity of `valid` under counts from `train`."""
    vocab = set(train) | set(valid)
    uni, bi = collections.Counter(train), collections.Counter(zip(train, train[1:]))
    n = len(train)

    def p_uni(w):
        return (uni[w] + 1) / (n + len(vocab))

    def p_bi(a, b):
        return 0.7 * (bi[(a, b)] / uni[a] if uni[a] else 0.0) + 0.3 * p_uni(b)

    nll_uni = -sum(math.log(p_uni(w)) for w in valid[1:]) / (len(valid) - 1)
    nll_bi = -sum(math.log(p_bi(a, b)) for a, b in zip(valid, valid[1:])) / (len(valid) - 1)
    return math.exp(nll_uni), math.exp(nll_bi), len(vocab)


def test_text_structure_is_learnable(tiny_text):
    train = (tiny_text / "wiki.train.tokens").read_text().split()
    valid = (tiny_text / "wiki.valid.tokens").read_text().split()
    unigram, bigram, vocab = _perplexities(train, valid)
    # measured (seed 0, 60k tokens): vocabulary 2871, unigram 346, bigram 127
    assert unigram < vocab / 5
    assert bigram < unigram / 2


def test_text_agreement_holds_between_subject_and_verb(tiny_text):
    """'is' follows singular subjects and 'are' plural ones: the grammar's long-range signal."""
    text = (tiny_text / "wiki.train.tokens").read_text()
    def count(dets, verb):
        return len(re.findall(rf"\b(?:{dets}) \w+ {verb}\b", text))

    singular, plural = count("A|Every|This", "is"), count("These|Many|Some", "are")
    wrong = count("A|Every|This", "are") + count("These|Many|Some", "is")
    assert singular > 20 and plural > 20 and wrong < (singular + plural) / 20  # measured 117, 79, 0


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    return get("tiny-images", tmp_path_factory.mktemp("ti") / "out", seed=0, size=1500, eval_size=500)


def test_images_are_byte_identical_per_seed(tmp_path, tiny_images):
    again = get("tiny-images", tmp_path / "again", seed=0, size=1500, eval_size=500)
    other = get("tiny-images", tmp_path / "other", seed=5, size=1500, eval_size=500)
    files = sorted(p.relative_to(tiny_images) for p in tiny_images.rglob("*") if p.is_file())
    assert len(files) == 8
    for rel in files:
        assert (again / rel).read_bytes() == (tiny_images / rel).read_bytes()
    assert (other / files[1]).read_bytes() != (tiny_images / files[1]).read_bytes()


def test_images_are_in_cifar_batch_format(tiny_images):
    """Read with plain pickle, as torchvision and the original CIFAR code do, not with our reader."""
    folder = tiny_images / "cifar-10-batches-py"
    counts = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape[1] == 3072
        assert len(batch[b"labels"]) == batch[b"data"].shape[0]
        counts.append(len(batch[b"labels"]))
    assert counts == [300] * 5 + [500]
    with open(folder / "batches.meta", "rb") as fh:
        meta = pickle.load(fh, encoding="bytes")
    assert [n.decode() for n in meta[b"label_names"]] == synthetic_images.CLASSES
    data = load_images(tiny_images)
    assert np.bincount(data.train_y.numpy()).tolist() == [150] * 10


def test_no_single_pixel_gives_the_class_away(tiny_images):
    """Best accuracy of a classifier that sees one pixel value (16 levels) is near chance."""
    data = load_images(tiny_images)
    x = (data.train_x.reshape(len(data.train_x), -1).numpy() // 16).astype(np.int64)  # [N, 3072]
    y = data.train_y.numpy()
    best = 0.0
    for f in range(x.shape[1]):
        table = np.zeros((16, 10))
        np.add.at(table, (x[:, f], y), 1)
        best = max(best, table.max(axis=1).sum() / len(y))  # in-sample: an upper bound
    assert best < 0.25  # measured 0.17 on this set




def test_small_cnn_learns_the_images_in_seconds(tiny_images, one_thread):
    torch.manual_seed(0)
    data = load_images(tiny_images)
    mean, std = data.mean.view(1, 3, 1, 1), data.std.view(1, 3, 1, 1)
    train_x = (data.train_x.float() / 255 - mean) / std
    test_x = (data.test_x.float() / 255 - mean) / std
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 12, 5, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(12, 24, 3, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveMaxPool2d(1), torch.nn.Flatten(), torch.nn.Linear(24, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        order = torch.randperm(len(train_x), generator=gen)
        for i in range(0, len(order), 100):
            idx = order[i:i + 100]
            loss = torch.nn.functional.cross_entropy(net(train_x[idx]), data.train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        accuracy = (net(test_x).argmax(1) == data.test_y).float().mean().item()
    assert accuracy > 0.5  # chance is 0.1; measured ~0.8 with these settings
