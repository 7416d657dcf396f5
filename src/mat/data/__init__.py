"""Datasets: download or copy (verified), generate for offline runs, and load for training.

    get(name, out, source=None, **options) -> Path    # wikitext2, wikitext103, cifar10, tiny-text, tiny-images
    verify(name, folder, lock=None) -> manifest dict
    load_text(folder, vocab_size, seq_len, cache_dir=None) -> TextData
    mask_tokens(ids, spec, generator, prob=0.15) -> (inputs, labels)
    load_images(folder) -> ImageData
    augment(x_uint8, generator, mean, std, train) -> normalised float batch

Expected failures raise `DataError` with a message naming the file or URL at fault.
Names are imported on first use (PEP 562), so `python -m mat data get` does not pay for torch.
"""

from __future__ import annotations

import importlib

from .errors import DataError, DownloadInterrupted
from .sources import NAMES

_LAZY = {
    "get": "acquire", "verify": "manifest",
    "TextData": "text", "load_text": "text",
    "MaskSpec": "mlm", "mask_tokens": "mlm", "IGNORE_INDEX": "mlm",
    "ImageData": "images", "load_images": "images",
    "augment": "augment",
}

__all__ = ["NAMES", "DataError", "DownloadInterrupted", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
