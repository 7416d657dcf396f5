"""Shared test fixtures: tiny generated datasets (made once per session) and a one-thread torch.

The machine running the tests is a small shared CPU; tiny models are faster with one intra-op
thread than with threads competing for the same cores, and the results do not depend on it.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run the test with one torch thread, restoring the previous setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_text_dir(tmp_path_factory):
    """A tiny WikiText-layout corpus from the data package's generator (~1k training words)."""
    from mat.data import get

    return get("tiny-text", tmp_path_factory.mktemp("data") / "tiny-text", seed=0, size=1000, eval_size=1000)


@pytest.fixture(scope="session")
def tiny_images_dir(tmp_path_factory):
    """A tiny CIFAR-10-layout image set from the data package's generator (64 train, 32 test)."""
    from mat.data import get

    return get("tiny-images", tmp_path_factory.mktemp("data") / "tiny-images", seed=0, size=64, eval_size=32)


@pytest.fixture
def run_config(tiny_text_dir, tiny_images_dir):
    """Factory of small run configs (a dict, not yet validated) for micro models on the tiny data:
    `run_config("bert", {"name": "mat", ...}, train={"max_steps": 4})`; sections merge into the
    defaults below key by key."""

    def make(arch: str = "bert", method: dict | None = None, **sections) -> dict:
        text = arch != "vgg16"
        cfg = {
            "name": f"test-{arch}",
            "seed": 0,
            "device": "cpu",
            "data": {"name": "tiny-text", "dir": str(tiny_text_dir), "vocab_size": 200, "seq_len": 32}
            if text
            else {"name": "tiny-images", "dir": str(tiny_images_dir), "augment": True},
            "model": {"arch": arch, "size": "micro"},
            "partition": {"bert": ["head"], "switch": ["head", "expert"], "vgg16": ["filter"]}[arch],
            "method": method or {"name": "vanilla"},
            "optim": {"name": "adamw", "lr": 1.0e-3} if text else {"name": "sgd", "lr": 0.05, "momentum": 0.9},
            "train": {"batch_size": 32, "max_steps": 6, "eval_every": 3, "eval_batches": 1,
                      "eval_batch_size": 32, "log_every": 2, "checkpoint_every": 3},
            "ntk": {"samples": 4, "top_k": 4},
        }
        for key, value in sections.items():
            cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and isinstance(cfg.get(key), dict) else value
        return cfg

    return make


MICRO_KINDS = {"bert": ["head"], "switch": ["head", "expert"], "vgg16": ["filter"]}


@pytest.fixture
def micro_model():
    """Factory of a micro model, its inputs and its partition, the same on every call:
    `micro_model("switch", samples=6)` -> (model, x [6, 11] token ids over a vocabulary of 31,
    partition of heads + experts); VGG16 takes [samples, 3, 32, 32] images and its filters."""

    def make(arch: str, samples: int, seq_len: int = 11, vocab: int = 31):
        from mat.models import build_model, build_partition

        torch.manual_seed(0)
        if arch == "vgg16":
            model = build_model({"arch": arch, "size": "micro"})
            x = torch.randn(samples, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        else:
            cfg = {"arch": arch, "size": "micro", "vocab_size": vocab}
            model = build_model({**cfg, "capacity_factor": 1.0} if arch == "switch" else cfg)
            x = torch.randint(0, vocab, (samples, seq_len), generator=torch.Generator().manual_seed(1))
        return model, x, build_partition(model, MICRO_KINDS[arch])

    return make
