"""The two learning tasks the loop trains: masked language modelling and image classification.

A task owns everything that differs between text and images -- how a training batch is made from
example indices (MLM masking or augmentation, with a generator derived from (seed, step)), the loss
and the accuracy, which splits are evaluated and how, and which inputs the mNTK is measured on --
so the loop itself is the same for every model and method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

from mat.train import seeds
from mat.train.run_config import IMAGE_DATASETS, TEXT_DATASETS, ConfigError

IGNORE = -100  # label of an unmasked position (mat.data.mask_tokens; F.cross_entropy's ignore_index)


class DataMissingError(ConfigError):
    """The run's data folder is missing or incomplete: nothing was trained."""


@dataclass
class LossOut:
    """A batch's mean loss over its counted targets, plus what accuracy and exact averages need."""

    loss: torch.Tensor  # scalar, differentiable: sum of per-target losses / max(count, 1)
    loss_sum: torch.Tensor  # scalar: sum of per-target losses (for token-weighted evaluation)
    correct: torch.Tensor  # scalar int: targets predicted right (top-1)
    count: torch.Tensor  # scalar int: targets counted (masked tokens; images)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> LossOut:
    """Cross-entropy over the targets that are not IGNORE; top-1 accuracy over the same targets.

    Summed then divided by max(count, 1), so a text batch that happens to have no masked token
    gives loss 0 instead of the NaN of a mean over nothing (which would stop the run)."""
    flat, tgt = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    loss_sum = F.cross_entropy(flat.float(), tgt, ignore_index=IGNORE, reduction="sum")
    counted = tgt != IGNORE
    count = counted.sum()
    correct = ((flat.argmax(-1) == tgt) & counted).sum()
    return LossOut(loss_sum / count.clamp(min=1), loss_sum.detach(), correct, count)


class Task:
    """Interface (see MLMTask and ImageTask)."""

    eval_splits: tuple[str, ...]
    n_train: int

    def model_options(self) -> dict:
        """Model config keys that come from the data (e.g. vocab_size)."""
        raise NotImplementedError

    def train_batch(self, index: torch.Tensor, keys: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of the training examples `index`, on the run's device; any randomness
        comes from a generator seeded by `keys` (e.g. (seed, "batch", step))."""
        raise NotImplementedError

    def measure_inputs(self, index: torch.Tensor, keys: tuple) -> torch.Tensor:
        """Inputs of training examples for a measurement (mNTK), without targets."""
        raise NotImplementedError

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> LossOut:
        return cross_entropy(logits, targets)


class MLMTask(Task):
    """Masked language modelling (Appendix B.1): 15% of tokens masked (80/10/10), cross-entropy
    over the masked positions, accuracy = masked tokens predicted right.

    Masks are drawn on the CPU (the same masks on every device). Evaluation masks come from a fixed
    generator per split that does not depend on the run's seed, so every evaluation of every method
    and seed scores the same masked positions.
    """

    eval_splits = ("valid", "test")

    def __init__(self, data, mask_prob: float, device: torch.device, eval_batch_size: int, eval_batches: int | None):
        self.data, self.mask_prob, self.device = data, mask_prob, device
        self.n_train = int(data.train.shape[0])
        self.eval_batch_size = eval_batch_size
        self._eval: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for split in self.eval_splits:
            seqs = getattr(data, split)
            if eval_batches is not None:
                seqs = seqs[: eval_batches * eval_batch_size]
            if seqs.shape[0] == 0:
                raise DataMissingError(f"data: the {split} split holds no sequence of {data.train.shape[1]} tokens")
            self._eval[split] = self._mask(seqs, seeds.generator("eval-masks", split))

    def _mask(self, ids: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        from mat.data import mask_tokens

        return mask_tokens(ids, self.data, gen, prob=self.mask_prob)

    def model_options(self) -> dict:
        return {"vocab_size": int(self.data.vocab_size)}

    def train_batch(self, index, keys):
        inputs, labels = self._mask(self.data.train[index], seeds.generator(*keys))
        return inputs.to(self.device), labels.to(self.device)

    def measure_inputs(self, index, keys):
        """Masked token ids, as the model sees them in training."""
        return self.train_batch(index, keys)[0]

    def eval_batches(self, split):
        inputs, labels = self._eval[split]
        for i in range(0, inputs.shape[0], self.eval_batch_size):
            yield inputs[i : i + self.eval_batch_size].to(self.device), labels[i : i + self.eval_batch_size].to(self.device)


class ImageTask(Task):
    """Image classification (Table 3): cross-entropy, top-1 accuracy, standard augmentation in
    training (random crop with padding + flip; draws from a CPU generator, applied on the device). Only a test split exists, as
    in the paper (train/test); it is logged as "test", never passed off as validation."""

    eval_splits = ("test",)

    def __init__(self, data, augment: bool, device: torch.device, eval_batch_size: int, eval_batches: int | None):
        self.data, self.augment, self.device = data, augment, device
        self.train_x, self.train_y = data.train_x.to(device), data.train_y.to(device)
        self.test_x, self.test_y = data.test_x.to(device), data.test_y.to(device)
        if eval_batches is not None:
            self.test_x = self.test_x[: eval_batches * eval_batch_size]
            self.test_y = self.test_y[: eval_batches * eval_batch_size]
        self.mean, self.std = data.mean.to(device), data.std.to(device)
        self.n_train = int(self.train_x.shape[0])
        self.eval_batch_size = eval_batch_size

    def model_options(self) -> dict:
        return {}

    def _prepare(self, x: torch.Tensor, keys: tuple | None, train: bool) -> torch.Tensor:
        from mat.data import augment

        gen = seeds.generator(*keys) if keys is not None else None  # CPU: the same draws on every device
        return augment(x, gen, self.mean, self.std, train=train)

    def train_batch(self, index, keys):
        index = index.to(self.device)
        return self._prepare(self.train_x[index], keys, self.augment), self.train_y[index]

    def measure_inputs(self, index, keys):
        """Normalised training images without augmentation: the data points themselves."""
        return self._prepare(self.train_x[index.to(self.device)], None, False)

    def eval_batches(self, split):
        if split != "test":
            raise KeyError(f"images: no {split!r} split; the image task evaluates on 'test' only")
        for i in range(0, self.test_x.shape[0], self.eval_batch_size):
            x = self.test_x[i : i + self.eval_batch_size]
            yield self._prepare(x, None, False), self.test_y[i : i + self.eval_batch_size]


def load_task(cfg: dict, device: torch.device) -> Task:
    """Load the run's data (prepared beforehand by `python -m mat data get`) into its task."""
    data_cfg, train_cfg = cfg["data"], cfg["train"]
    name, folder = data_cfg["name"], Path(data_cfg["dir"])
    prepare = f"python -m mat data get {name} --out {folder}"
    if not folder.is_dir():
        raise DataMissingError(f"data folder {folder} not found (data.dir); prepare it first with:\n    {prepare}")
    from mat import data as mat_data

    try:
        from mat.data.check import check_for_training

        check_for_training(folder, name)  # before any step: the files are those the manifest records
    except mat_data.DataError as exc:
        raise DataMissingError(f"data.dir: {exc}; nothing was trained (re-create it with: {prepare})") from None
    try:
        if name in TEXT_DATASETS:
            text = mat_data.load_text(folder, data_cfg["vocab_size"], data_cfg["seq_len"], cache_dir=data_cfg["cache_dir"])
        elif name in IMAGE_DATASETS:
            images = mat_data.load_images(folder)
        else:  # the schema allows only the names above
            raise ConfigError(f"data.name: got {name!r}; allowed values: {TEXT_DATASETS + IMAGE_DATASETS}")
    except (mat_data.DataError, FileNotFoundError, NotADirectoryError) as exc:
        raise DataMissingError(f"data folder {folder} cannot be used: {exc}\nprepare it with:\n    {prepare}") from None
    ev = (train_cfg["eval_batch_size"], train_cfg["eval_batches"])
    if name in TEXT_DATASETS:
        if text.train.shape[0] == 0:
            raise DataMissingError(f"data: {folder} has no training sequence of {data_cfg['seq_len']} tokens")
        return MLMTask(text, data_cfg["mask_prob"], device, *ev)
    return ImageTask(images, data_cfg["augment"], device, *ev)
