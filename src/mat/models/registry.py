"""The registry of model architectures: one entry per `model.arch`, made by the model's own file.

A model file ends with its registration:

    register_model("bert", build_bert, label="BERT", inputs="text")

`build` makes a randomly initialised model from a model config (the `model:` block of a run config,
plus `vocab_size` from the data for text models). `label` is the paper's name for it (row labels:
"BERT", "BERT-Rand"); `inputs` is the data it takes: "text" (token ids [B, T]) or "image" (float
[B, 3, H, W]). The run-config schema and the data/model consistency check (`mat.train.run_config`)
read the registry, and the report's labels are a generated snapshot of it (`mat/schemas/labels.yaml`,
kept current by a test); `mat.models` imports every module of its package, so a new
model file needs no line anywhere else (the profiles that run it aside).

This module imports nothing: it holds the entries; the models live in their files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

INPUTS = ("text", "image")

__all__ = [
    "INPUTS", "Model", "register_model", "unregister_model", "model_spec", "find_model", "model_names", "archs_taking",
]


@dataclass(frozen=True)
class Model:
    name: str  # `model.arch`
    build: Callable[[dict], Any]  # model config -> torch.nn.Module honouring the contract of mat.models
    label: str  # the paper's name ("BERT", "Switch", "VGG16")
    inputs: str  # one of INPUTS


_MODELS: dict[str, Model] = {}


def register_model(name: str, build: Callable[[dict], Any], *, label: str, inputs: str) -> Model:
    """Register `build` as `model.arch: name`; the same name registered twice for another builder is an error."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_model: name must be a non-empty string, got {name!r}")
    if inputs not in INPUTS:
        raise ValueError(f"register_model({name!r}): inputs {inputs!r}; expected one of {INPUTS}")
    old = _MODELS.get(name)
    if old is not None and old.build.__qualname__ != build.__qualname__:
        raise ValueError(f"model {name!r} is already registered (builder {old.build.__qualname__})")
    _MODELS[name] = Model(name, build, label, inputs)
    return _MODELS[name]


def unregister_model(name: str) -> None:
    """Remove a model (tests that register a toy model clean up with this)."""
    _MODELS.pop(name, None)


def model_names() -> tuple[str, ...]:
    """Every registered `model.arch`, in registration order."""
    return tuple(_MODELS)


def archs_taking(inputs: str) -> tuple[str, ...]:
    """The registered architectures that take `inputs` ("text" or "image")."""
    return tuple(m.name for m in _MODELS.values() if m.inputs == inputs)


def find_model(name: Any) -> Model | None:
    return _MODELS.get(name) if isinstance(name, str) else None


def model_spec(name: Any) -> Model:
    """The registered model `name`; an unknown name is an error naming the known ones."""
    spec = find_model(name)
    if spec is None:
        raise ValueError(f"model config: arch {name!r} unknown; expected one of {sorted(_MODELS)}")
    return spec
