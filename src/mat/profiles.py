"""Scale profiles: one YAML file per profile (`config/profiles/NAME.yaml`) lists the datasets, the
experiments (a base run config plus one override per method) and the seeds.

Profiles differ only in numbers: the same experiments, methods and code paths run in `tiny`
(generated data, a laptop CPU), `small` (one GPU, real data) and `paper` (Table 4 / Appendix B).
A run is (experiment, method, seed); its run config is
`deep_merge(profile.defaults, experiment.run, {"method": methods[method], "seed": seed})`.
The Snakemake workflow, the DVC stages and `python -m mat config` all read profiles through this
module, so there is one definition of what a run is.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

PROFILE_DIR = Path("config/profiles")


class ProfileError(ValueError):
    """A profile file is missing or does not match the schema."""


@dataclass(frozen=True)
class Run:
    profile: str
    experiment: str
    method: str
    seed: int

    @property
    def dir(self) -> str:
        """Where the run's outputs land, relative to the repository root."""
        return f"results/{self.profile}/runs/{self.experiment}/{self.method}/seed{self.seed}"


def deep_merge(base: dict, override: dict) -> dict:
    """A copy of `base` with `override` merged in, recursively for nested mappings."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _schema() -> dict:
    text = resources.files("mat").joinpath("schemas/profile.schema.yaml").read_text()
    return yaml.safe_load(text)


def available(profile_dir: Path = PROFILE_DIR) -> list[str]:
    return sorted(p.stem for p in Path(profile_dir).glob("*.yaml"))


def load_profile(name: str, profile_dir: Path | str = PROFILE_DIR) -> dict:
    """Read and validate `profile_dir/name.yaml`; errors name the file and the key path."""
    profile_dir = Path(profile_dir)
    path = profile_dir / f"{name}.yaml"
    if not path.is_file():
        names = available(profile_dir)
        hint = difflib.get_close_matches(name, names, n=1)
        raise ProfileError(
            f"unknown profile {name!r}: no file {path}; available profiles: {', '.join(names) or 'none'}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{path}: {'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}" for e in errors[:10]]
        raise ProfileError("profile does not match the schema:\n  " + "\n  ".join(lines))
    if data["profile"] != name:
        raise ProfileError(f"{path}: key 'profile' is {data['profile']!r}, expected {name!r} (the file name)")
    for exp_name, exp in data["experiments"].items():
        ds = exp["run"].get("data", {}).get("dataset")
        if ds is not None and ds not in data["datasets"]:
            raise ProfileError(
                f"{path}: experiments.{exp_name}.run.data.dataset is {ds!r}; "
                f"expected one of the profile's datasets: {sorted(data['datasets'])}"
            )
    return data


def runs(profile: dict, experiments: list[str] | None = None) -> Iterator[Run]:
    """Every (experiment, method, seed) of a profile, in a stable order."""
    for exp_name, exp in profile["experiments"].items():
        if experiments is not None and exp_name not in experiments:
            continue
        seeds = exp.get("seeds", profile["seeds"])
        for method in exp["methods"]:
            for seed in seeds:
                yield Run(profile["profile"], exp_name, method, int(seed))


def check_run(profile: dict, experiment: str, method: str, seed: int | None = None, models: bool = True) -> dict:
    """The run config of (experiment, method, seed), validated as `mat train` will validate it
    (mat.train.run_config; `models=False`: without building the model on the meta device); a
    ProfileError names profile, experiment, method and each bad key."""
    from mat.train.run_config import ConfigError, validate

    exp = profile["experiments"].get(experiment, {})
    seed = seed if seed is not None else int(exp.get("seeds", profile["seeds"])[0])
    cfg = run_config(profile, experiment, method, seed)
    label = f"profile {profile['profile']!r}, experiment {experiment!r}, method {method!r}"
    try:
        validate(copy.deepcopy(cfg), model_checks=models)
    except ConfigError as exc:
        problems = str(exc).split("\n", 1)[-1].strip().splitlines()
        raise ProfileError("; ".join(f"{label}: {p.strip()}" for p in problems)) from None
    return cfg


def check_runs(profile: dict, models: bool = True) -> None:
    """Validate every run config of a profile before any work (one per experiment and method: the
    seed changes no key's validity), reporting all bad runs at once."""
    problems = []
    for experiment, exp in profile["experiments"].items():
        for method in exp["methods"]:
            try:
                check_run(profile, experiment, method, models=models)
            except ProfileError as exc:
                problems.append(str(exc))
    if problems:
        raise ProfileError("\n".join(problems))


def dataset_dir(profile: dict, dataset: str) -> str:
    """Folder holding a profile's prepared dataset (shared by every profile that uses it)."""
    return f"data/{dataset}"


def run_config(profile: dict, experiment: str, method: str, seed: int) -> dict[str, Any]:
    """The resolved run config of one run (what `python -m mat train --config` reads)."""
    try:
        exp = profile["experiments"][experiment]
    except KeyError:
        raise ProfileError(
            f"profile {profile['profile']!r} has no experiment {experiment!r}; "
            f"expected one of {sorted(profile['experiments'])}"
        ) from None
    if method not in exp["methods"]:
        raise ProfileError(
            f"experiment {experiment!r} of profile {profile['profile']!r} has no method {method!r}; "
            f"expected one of {sorted(exp['methods'])}"
        )
    cfg = deep_merge(profile.get("defaults", {}), exp["run"])
    cfg = deep_merge(cfg, exp.get("method_overrides", {}).get(method, {}))
    cfg["method"] = deep_merge(cfg.get("method", {}), exp["methods"][method])
    cfg["seed"] = int(seed)
    cfg["name"] = f"{profile['profile']}/{experiment}/{method}/seed{seed}"
    data = cfg.setdefault("data", {})
    ds = data.pop("dataset", None)
    if ds is not None:
        data.setdefault("name", profile["datasets"][ds]["name"])
        data.setdefault("dir", dataset_dir(profile, ds))
    return cfg
