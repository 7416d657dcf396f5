"""What each dataset is: its files, where it can be downloaded today, and its known checksums.

The tables are module attributes on purpose: tests replace `MIRRORS` (so that nothing leaves
127.0.0.1) and `PINNED_SHA256` / `ARCHIVE_MD5` (real checksums cannot be exercised offline).

Sources, as of 2026 (see the project README for the story):
- The original WikiText links under `s3.amazonaws.com/research.metamind.io` answer 403 and are
  kept only as a last resort, in case they come back; the dataset author's mirror
  `wikitext.smerity.com` serves the identical zips but refuses Python's default User-Agent, so
  `fetch` always sends an explicit one.
- Hugging Face's `Salesforce/wikitext` holds the same text as parquet files. Reading parquet needs
  pyarrow (or fastparquet), which this project does not install, so it is not a fallback here.
- CIFAR-10 comes from its authors' page at the University of Toronto, or from PaddlePaddle's
  dataset mirror (`dataset.bj.bcebos.com/cifar/`, the URL `paddle.vision.datasets.Cifar10`
  downloads), both checked by the authors' published md5 of the same `cifar-10-python.tar.gz`.
- WikiText's third source is the author's own S3 bucket (`smerity.s3.amazonaws.com/wikitext/`),
  serving the same zips; what it serves is checked against the pinned sha256 of the extracted files
  (WikiText-2) or the lock file, so a mirror that changed is refused, never used.
The bcebos and smerity.s3 URLs could not be reached from the machine this was written on.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "valid", "test")
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_FILES = tuple(f"{CIFAR_DIR}/{n}" for n in
                    ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                     "test_batch", "batches.meta"))

NAMES = ("wikitext2", "wikitext103", "cifar10", "tiny-text", "tiny-images")

# Tried in order; the first that yields verified data wins. Keyed by variant (see `variant`).
MIRRORS: dict[str, list[str]] = {
    "wikitext2": [
        "https://wikitext.smerity.com/wikitext-2-v1.zip",
        "https://smerity.s3.amazonaws.com/wikitext/wikitext-2-v1.zip",
        "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
    ],
    "wikitext2-raw": [
        "https://wikitext.smerity.com/wikitext-2-raw-v1.zip",
        "https://smerity.s3.amazonaws.com/wikitext/wikitext-2-raw-v1.zip",
        "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-raw-v1.zip",
    ],
    "wikitext103": [
        "https://wikitext.smerity.com/wikitext-103-v1.zip",
        "https://smerity.s3.amazonaws.com/wikitext/wikitext-103-v1.zip",
        "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip",
    ],
    "wikitext103-raw": [
        "https://wikitext.smerity.com/wikitext-103-raw-v1.zip",
        "https://smerity.s3.amazonaws.com/wikitext/wikitext-103-raw-v1.zip",
        "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-raw-v1.zip",
    ],
    "cifar10": [
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "https://dataset.bj.bcebos.com/cifar/cifar-10-python.tar.gz",
    ],
}

# Content checksums of the extracted files, independent of the archive that carried them.
# Where a file is missing here, its hash is recorded in mat-data.json at first fetch instead.
PINNED_SHA256: dict[str, dict[str, str]] = {
    "wikitext2": {
        "wiki.train.tokens": "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f",
        "wiki.valid.tokens": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
        "wiki.test.tokens": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
    },
    "wikitext2-raw": {
        "wiki.train.raw": "6707892fa3788b5ab9ed78ab5ff37d9fe825f6011a2ad4fcd6a6d467f0e7da57",
    },
}

# Checksums of whole archives, as their publishers give them: {variant: {archive file name: md5}}.
# Checked for any archive of that name, wherever it came from (mirror, --source URL or file).
ARCHIVE_MD5: dict[str, dict[str, str]] = {
    "cifar10": {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
}

# Lower bounds on file sizes: a cheap guard against handing over the wrong dataset where no hash is
# pinned (a WikiText-2 folder passed as WikiText-103 has nothing else to catch it). WikiText-103's
# training file is about 540 MB, WikiText-2's about 11 MB.
MIN_BYTES: dict[str, dict[str, int]] = {
    "wikitext103": {"wiki.train.tokens": 300_000_000},
    "wikitext103-raw": {"wiki.train.raw": 300_000_000},
}

# Image counts of the real CIFAR-10 (checked on every verification).
CIFAR10_COUNTS = {"train": 50_000, "test": 10_000}


@dataclass(frozen=True)
class Spec:
    """One dataset variant: the files an output folder must hold, relative to it."""

    name: str
    variant: str
    kind: str  # "text" or "images"
    files: tuple[str, ...]
    generated: bool

    @property
    def mirrors(self) -> list[str]:
        return list(MIRRORS.get(self.variant, []))

    @property
    def pinned(self) -> dict[str, str]:
        return dict(PINNED_SHA256.get(self.variant, {}))

    def archive_md5(self, archive_name: str) -> str | None:
        return ARCHIVE_MD5.get(self.variant, {}).get(archive_name)

    @property
    def min_bytes(self) -> dict[str, int]:
        return dict(MIN_BYTES.get(self.variant, {}))


def text_files(raw: bool) -> tuple[str, ...]:
    ext = "raw" if raw else "tokens"
    return tuple(f"wiki.{s}.{ext}" for s in SPLITS)


def spec(name: str, raw: bool = False) -> Spec:
    """The spec for `name`; `raw` picks WikiText's untokenized variant (`wiki.*.raw`)."""
    from .errors import DataError

    if name not in NAMES:
        raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(NAMES)}")
    if raw and name not in ("wikitext2", "wikitext103"):
        raise DataError(f"--raw applies to wikitext2 and wikitext103 only, not {name}")
    if name in ("wikitext2", "wikitext103"):
        variant = name + ("-raw" if raw else "")
        return Spec(name, variant, "text", text_files(raw), generated=False)
    if name == "tiny-text":
        return Spec(name, name, "text", text_files(False), generated=True)
    if name == "cifar10":
        return Spec(name, name, "images", CIFAR_FILES, generated=False)
    return Spec(name, name, "images", CIFAR_FILES, generated=True)
