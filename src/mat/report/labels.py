"""Names a reader sees: the paper's row labels for each method and a caption naming the profile.

Row labels follow Tables 1-3: the vanilla model is named after its architecture ("BERT", "Switch",
"VGG16"), the random baseline after it ("BERT-Rand"), then "Multirate" and "MAT". The labels are
the registrations' (`register_method` in each method's file, `register_model` in each model's), so
a new method or model brings its own. The registries are imported when a label is first asked for,
not with this module (they import torch).
"""

from __future__ import annotations

from mat import profiles

GENERATED_DATASETS = {"tiny-text", "tiny-images"}  # made by the project itself, not the paper's data


def experiment_arch(profile: dict, experiment: str) -> str:
    run = profiles.deep_merge(profile.get("defaults", {}), profile["experiments"][experiment]["run"])
    return str(run.get("model", {}).get("arch", experiment))


def arch_label(arch: str) -> str:
    """The paper's name of a registered architecture ("bert" -> "BERT"); others as they are."""
    from mat.models import find_model

    spec = find_model(arch)
    return spec.label if spec is not None else arch


def method_label(profile: dict, experiment: str, method: str) -> str:
    """The paper's row label of a profile's method key when the key is a registered method's name
    (`label` of its registration, "{model}" filled with the architecture's label); other keys are
    shown as they are."""
    from mat.policies import find_method

    spec = find_method(method)
    if spec is None:
        return method
    return spec.row_label(arch_label(experiment_arch(profile, experiment)))


def pruning_label(profile: dict, experiment: str, method: str) -> str:
    """Table 5's row labels: the method's `pruning_label` ("Vanilla", "SNIP (50%)" from the
    method's prune_ratio, "MAT"), else its `method_label`."""
    from mat.policies import find_method

    cfg = profile["experiments"][experiment]["methods"][method]
    spec = find_method(cfg.get("name", method))
    label = spec.table5_label(spec.config.parse(cfg)) if spec is not None else None
    return label if label is not None else method_label(profile, experiment, method)


def profile_caption(profile: dict) -> str:
    """'tiny profile: generated data, not paper numbers' -- so no plot is mistaken for the paper's.

    Decided by the data the profile uses, not by its name: generated data says so; real data at a
    reduced scale says it is not the paper's scale; the paper profile says it follows the paper.
    """
    name = profile["profile"]
    datasets = {d["name"] for d in profile["datasets"].values()}
    if datasets & GENERATED_DATASETS:
        return f"{name} profile: generated data, not paper numbers"
    if name != "paper":
        return f"{name} profile: real data at reduced scale, not paper numbers"
    return f"{name} profile: the paper's settings"


def table_title(name: str) -> str:
    """'table1' -> 'Table 1' (other names as they are)."""
    digits = name.removeprefix("table")
    return f"Table {digits}" if name.startswith("table") and digits.isdigit() else name
