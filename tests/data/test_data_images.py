"""CIFAR-layout loading, normalisation statistics, and batched crop/flip augmentation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mat.data import DataError, augment, cifar, load_images


@pytest.fixture
def cifar_dir(tmp_path, cifar_files):
    for rel, data in cifar_files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    return tmp_path


def test_load_images_shapes_and_statistics(cifar_dir):
    data = load_images(cifar_dir)
    assert data.train_x.dtype == torch.uint8 and data.train_x.shape == (60, 3, 32, 32)
    assert data.test_x.shape == (20, 3, 32, 32) and data.train_y.dtype == torch.int64
    # independent: unpickle directly and undo CIFAR's row layout by hand
    with open(cifar_dir / "cifar-10-batches-py" / "data_batch_2", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    first = raw[b"data"][0]
    assert torch.equal(data.train_x[12, 1, 3, 5], torch.tensor(first[1024 + 3 * 32 + 5]))
    assert data.train_y[12].item() == raw[b"labels"][0]
    pixels = data.train_x.numpy().astype(np.float64) / 255
    assert np.allclose(data.mean.numpy(), pixels.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(data.std.numpy(), pixels.std(axis=(0, 2, 3)), atol=1e-6)
    assert load_images(cifar_dir / "cifar-10-batches-py").train_x.shape == (60, 3, 32, 32)


def test_eval_mode_only_normalises():
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    out = augment(x, None, mean, std, train=False)
    for c in range(3):
        assert torch.allclose(out[:, c].double(), (x[:, c].double() / 255 - mean[c]) / std[c], atol=1e-5)


def _candidates(image: torch.Tensor) -> list[torch.Tensor]:
    """All 81 crops x 2 flips of one image, by plain slicing (the reference)."""
    padded = F.pad(image, (4, 4, 4, 4))
    out = []
    for dy in range(9):
        for dx in range(9):
            crop = padded[:, dy:dy + 32, dx:dx + 32]
            out += [crop, crop.flip(-1)]
    return out


def test_train_mode_is_a_padded_crop_and_flip_of_each_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (48, 3, 32, 32), dtype=torch.uint8, generator=g)
    mean, std = torch.zeros(3), torch.ones(3) / 255  # makes the output equal the uint8 pixels
    out = augment(x, torch.Generator().manual_seed(1), mean, std, train=True).round().to(torch.uint8)
    choices = set()
    flips = 0
    for b in range(len(x)):
        matches = [k for k, cand in enumerate(_candidates(x[b])) if torch.equal(cand, out[b])]
        assert len(matches) == 1  # exactly one crop/flip explains the output
        choices.add(matches[0] // 2)
        flips += matches[0] % 2
    assert len(choices) > 20 and 10 < flips < 38  # offsets and flips really vary


def test_augmentation_is_reproducible_and_vectorised_over_the_batch():
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    a = augment(x, torch.Generator().manual_seed(3), [0.5] * 3, [0.25] * 3, train=True)
    b = augment(x, torch.Generator().manual_seed(3), [0.5] * 3, [0.25] * 3, train=True)
    c = augment(x, torch.Generator().manual_seed(4), [0.5] * 3, [0.25] * 3, train=True)
    assert a.dtype == torch.float32 and torch.equal(a, b) and not torch.equal(a, c)
    # the padding is black (0) before normalisation, as in RandomCrop(padding=4)
    assert torch.isclose(a, torch.tensor(-2.0)).any()


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="expected uint8 images"):
        augment(torch.zeros(2, 3, 32, 32), None, [0.0] * 3, [1.0] * 3, train=False)
    with pytest.raises(ValueError, match="needs a generator"):
        augment(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), None, [0.0] * 3, [1.0] * 3, train=True)


def test_pickles_that_would_run_code_are_refused(cifar_dir):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = cifar_dir / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        load_images(cifar_dir)


def test_labels_out_of_range_and_missing_batches(cifar_dir):
    folder = cifar_dir / "cifar-10-batches-py"
    cifar._write_pickle(folder / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})
    with pytest.raises(DataError, match=r"test_batch: labels must lie in 0..9, got 0..10"):
        load_images(cifar_dir)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4: missing"):
        load_images(cifar_dir)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cpu_generator_gives_the_same_augmentation_on_the_gpu():
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    cpu = augment(x, torch.Generator().manual_seed(3), [0.5] * 3, [0.25] * 3, train=True)
    gpu = augment(x.cuda(), torch.Generator().manual_seed(3), [0.5] * 3, [0.25] * 3, train=True)
    assert gpu.is_cuda and torch.allclose(gpu.cpu(), cpu, atol=1e-6)
