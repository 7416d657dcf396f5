"""Run config: one YAML file = one training run. Validated up front, defaults filled in.

The shape of a run config and its defaults live in `mat/schemas/run.schema.yaml`; the allowed
`model.arch` values come from the model registry (`mat.models`). The blocks owned by other packages
(`method` by mat.policies, `optim` by mat.optim) are checked by their owners' validators here too, so a typo anywhere fails before any data is loaded or any step is taken.
Every error names the key path, the bad value and what is allowed (with a "did you mean" for an
unknown key).
"""

from __future__ import annotations

import copy
import difflib
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

TEXT_DATASETS = ("tiny-text", "wikitext2", "wikitext103")
IMAGE_DATASETS = ("tiny-images", "cifar10")


class ConfigError(ValueError):
    """A run config that cannot be trained: the message names the key path and the problem."""


def schema() -> dict:
    """The run-config schema, with `model.arch` limited to the registered models."""
    from mat.models import model_names

    sch = yaml.safe_load(resources.files("mat").joinpath("schemas/run.schema.yaml").read_text())
    sch["properties"]["model"]["properties"]["arch"]["enum"] = list(model_names())
    return sch


# --------------------------------------------------------------------------------------- reading
def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"run config {path} not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _number(value: Any) -> Any:
    """A `--set` value YAML 1.1 leaves as a string but anyone means as a number (`1e6`, `2e-3`)."""
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    return value


def apply_overrides(cfg: dict, assignments: Iterable[str]) -> dict:
    """A copy of `cfg` with `key.path=value` assignments applied (values parsed as YAML scalars)."""
    out = copy.deepcopy(cfg)
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. data.seq_len=32")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from None
        value = _number(value)
        parts = key.strip().split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"--set {item!r}: {where} is {child!r}, not a mapping of keys")
            node = child
        node[parts[-1]] = value
    return out


# ------------------------------------------------------------------------------------ validation
def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> list[str]:
    """One readable line per problem in a jsonschema error."""
    where = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        lines = []
        for key in sorted(set(error.instance) - set(allowed)):
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            lines.append(
                f"{_path(where + [key])}: unknown key"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; allowed keys: {', '.join(allowed)}"
            )
        return lines
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return [f"{_path(where + [k])}: missing (required)" for k in missing]
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        hint = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1)
        return [
            f"{_path(where)}: got {error.instance!r}; allowed values: {allowed}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
        ]
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        hint = ""
        if isinstance(error.instance, str):
            try:
                float(error.instance)
                hint = " (YAML 1.1 reads a number like 1e-3 as a string; write 1.0e-3)"
            except ValueError:
                pass
        return [f"{_path(where)}: expected {expected}, got {error.instance!r}{hint}"]
    return [f"{_path(where)}: got {error.instance!r}: {error.message}"]


def _fill_defaults(node: Any, sch: Mapping) -> Any:
    """Fill `default:` values of the schema's object properties, recursively."""
    if not isinstance(node, dict) or sch.get("type") != "object":
        return node
    for key, sub in sch.get("properties", {}).items():
        if key not in node and "default" in sub:
            node[key] = copy.deepcopy(sub["default"])
        if key in node:
            node[key] = _fill_defaults(node[key], sub)
    return node


def _check_consistency(cfg: dict) -> list[str]:
    """Rules across keys that a JSON schema does not express readably."""
    from mat.models import archs_taking, model_spec

    problems = []
    data, train = cfg["data"], cfg["train"]
    arch = cfg["model"]["arch"]
    for inputs, datasets, plural in (("text", TEXT_DATASETS, "text"), ("image", IMAGE_DATASETS, "images")):
        if data["name"] in datasets and model_spec(arch).inputs != inputs:
            problems.append(
                f"model.arch: got {arch!r}, which does not take {inputs} data ({data['name']!r}); "
                f"allowed with {plural}: {', '.join(archs_taking(inputs))}"
            )
    if (train["epochs"] is None) == (train["max_steps"] is None):
        problems.append(
            f"train: set exactly one of train.epochs and train.max_steps "
            f"(got epochs={train['epochs']!r}, max_steps={train['max_steps']!r})"
        )
    if "vocab_size" in cfg["model"]:
        problems.append("model.vocab_size: is filled in from the data; set data.vocab_size instead")
    return problems


def _owner_checks(cfg: dict) -> list[str]:
    """The `method` and `optim` owners' own validation (they raise ValueError naming the key).

    Both blocks are kept as written: their owners fill their defaults when the policy and the
    optimizer are built (a method's defaults depend on the method; the optim validator's filled
    output is not itself a valid input, e.g. milestones are filled for every schedule)."""
    from mat.optim import validate_optim_config
    from mat.policies import parse_method_config

    problems = []
    for block, check in (("method", parse_method_config), ("optim", validate_optim_config)):
        try:
            check(cfg[block])
        except (ValueError, TypeError, KeyError) as exc:
            msg = str(exc).strip("'\"")
            problems.append(msg if msg.startswith(block) else f"{block}: {msg}")
    return problems


def _model_checks(cfg: dict) -> list[str]:
    """Build the model and its partitions on PyTorch's "meta" device (shapes only: no memory, no
    random draws, well under a second even at paper scale) and push one input of the data's shape
    through it, so a bad model key, a partition kind the architecture lacks, or a sequence longer
    than the model's positions fails here rather than after the data is loaded."""
    import torch

    from mat.models import build_model, build_partition

    data = cfg["data"]
    text = data["name"] in TEXT_DATASETS
    model_cfg = {**cfg["model"], **({"vocab_size": data["vocab_size"]} if text else {})}
    try:
        with torch.device("meta"):
            model = build_model(model_cfg)
    except (ValueError, TypeError, KeyError) as exc:
        msg = str(exc).strip("'\"")
        return [msg if msg.startswith("model") else f"model: {msg}"]
    problems = []
    for where, kinds in (("partition", cfg["partition"]), ("ntk.log_kinds", cfg["ntk"]["log_kinds"])):
        for kind in kinds:
            try:
                build_partition(model, [kind])
            except (ValueError, KeyError) as exc:
                problems.append(f"{where}: {kind!r} does not apply to model.arch {cfg['model']['arch']!r}: {exc}")
    shape = (1, data["seq_len"]) if text else (1, 3, 32, 32)
    sample = torch.zeros(shape, dtype=torch.long if text else torch.float32, device="meta")
    try:
        with torch.no_grad():
            model(sample)
    except Exception as exc:  # noqa: BLE001 -- any failure here means the pair cannot train
        what = f"data.seq_len={data['seq_len']}" if text else "32x32 images"
        problems.append(f"model: this {cfg['model']['arch']} cannot take inputs of {what}: {exc}")
        return problems
    return problems + _ntk_budget_checks(cfg, model, sample)


def _ntk_budget_checks(cfg: dict, model, sample) -> list[str]:
    """Every partition the run measures must fit `ntk.memory_gb` layer by layer (mat.ntk_budget):
    a layer whose per-sample gradients, with the pass's reserve for cached boundaries and kept
    activations (counted from `sample`, one input on the meta device), exceed it fails here, not
    at the first mNTK."""
    from mat.models import build_partition
    from mat.ntk import passes
    from mat.ntk_budget import GATHER_COPIES, NtkBudgetError

    ncfg, problems = cfg["ntk"], []
    copies = GATHER_COPIES if int(cfg["train"].get("gpus", 1)) > 1 else 1
    for kinds in (list(cfg["partition"]), *([k] for k in ncfg["log_kinds"])):
        try:
            part = build_partition(model, kinds)
            # the multi-GPU path (mat.train.distributed) plans without the reserve of segmented passes
            passes(model, part, ncfg["samples"], ncfg["memory_gb"], copies=copies, sample=sample if copies == 1 else None)
        except NtkBudgetError as exc:
            problems.append(f"{exc} (partition {'+'.join(kinds)})")
        except (ValueError, KeyError):  # a partition the model lacks: reported above
            pass
    return problems + _rank_budget_checks(cfg, model, sample)


def _rank_budget_checks(cfg: dict, model, sample) -> list[str]:
    """The heads' effective ranks (`ntk.effective_rank`, taken when a measured partition has heads)
    go through in chunks of inputs within `ntk.memory_gb`; one input's attention matrices must fit."""
    from mat.effective_rank import probs_bytes_per_sample
    from mat.ntk_budget import budget_bytes

    ncfg = cfg["ntk"]
    kinds = set(cfg["partition"]) | set(ncfg["log_kinds"])
    if not ncfg["effective_rank"] or ncfg["memory_gb"] is None or "head" not in kinds or sample.dim() != 2:
        return []
    if not hasattr(model, "attention_layout"):
        return []
    need = probs_bytes_per_sample(model, int(sample.shape[1]))
    if need <= budget_bytes(ncfg["memory_gb"]):
        return []
    return [f"ntk.memory_gb: one input's attention matrices for the heads' effective rank need {need / 1e9:.3g} GB "
            f"(seq_len {int(sample.shape[1])}), over the budget of {ncfg['memory_gb']:g} GB; raise ntk.memory_gb, "
            "or set ntk.effective_rank: false"]


def validate(cfg: dict, source: str = "run config", model_checks: bool = True) -> dict:
    """Validate `cfg` against the schema and the owners' rules; return it with defaults filled.
    `model_checks=False` skips building the model on the meta device (the workflow's parse-time
    check of every run; `mat train` and `mat config` always build it)."""
    sch = schema()
    validator = jsonschema.Draft202012Validator(sch)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: [str(p) for p in e.absolute_path])
    lines = list(dict.fromkeys(line for e in errors for line in _describe(e)))  # one line per problem
    if not lines:
        cfg = _fill_defaults(copy.deepcopy(cfg), sch)
        if cfg["data"]["dir"] is None:
            cfg["data"]["dir"] = f"data/{cfg['data']['name']}"
        lines = _check_consistency(cfg) + _owner_checks(cfg)
        if not lines and model_checks:
            lines = _model_checks(cfg)
    if lines:
        raise ConfigError(f"{source} is not valid:\n  " + "\n  ".join(lines))
    return cfg


def load_run_config(path_or_dict: str | Path | Mapping, overrides: Iterable[str] = ()) -> dict:
    """Read (a path) or take (a mapping) a run config, apply `KEY.PATH=VALUE` overrides, validate
    it and return the resolved config with every default filled in."""
    if isinstance(path_or_dict, Mapping):
        cfg, source = copy.deepcopy(dict(path_or_dict)), "run config"
    else:
        cfg, source = read_yaml(path_or_dict), str(path_or_dict)
    overrides = list(overrides)
    cfg = apply_overrides(cfg, overrides)
    try:
        return validate(cfg, source)
    except ConfigError as exc:
        if not overrides:
            raise
        raise ConfigError(_blame_overrides(str(exc), overrides)) from None


def _blame_overrides(message: str, overrides: list[str]) -> str:
    """Say which problems come from a `--set` value rather than from the config file."""
    keys = {item.partition("=")[0].strip(): item for item in overrides}
    lines = message.splitlines()
    for i, line in enumerate(lines[1:], 1):
        path = line.strip().split(":", 1)[0]
        if path in keys:
            lines[i] = f"{line} (the --set {keys[path]} value, not the config file)"
    return "\n".join(lines)
