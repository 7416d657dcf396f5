"""Names a reader sees: the paper's row labels for each method and a caption naming the profile.

Row labels follow Tables 1-3: the vanilla model is named after its architecture ("BERT", "Switch",
"VGG16"), the random baseline after it ("BERT-Rand"), then "Multirate" and "MAT".
"""

from __future__ import annotations

from mat import profiles

ARCH_LABELS = {"bert": "BERT", "switch": "Switch", "vgg16": "VGG16"}
GENERATED_DATASETS = {"tiny-text", "tiny-images"}  # made by the project itself, not the paper's data


def experiment_arch(profile: dict, experiment: str) -> str:
    run = profiles.deep_merge(profile.get("defaults", {}), profile["experiments"][experiment]["run"])
    return str(run.get("model", {}).get("arch", experiment))


def method_label(profile: dict, experiment: str, method: str) -> str:
    """The paper's row label of a profile's method key (unknown keys are shown as they are)."""
    model = ARCH_LABELS.get(experiment_arch(profile, experiment), experiment_arch(profile, experiment))
    known = {"vanilla": model, "rand": f"{model}-Rand", "multirate": "Multirate", "mat": "MAT",
             "snip": "SNIP", "mat_prune": "MAT + pruning"}
    return known.get(method, method)


def pruning_label(profile: dict, experiment: str, method: str) -> str:
    """Table 5's row labels: "Vanilla", "SNIP (50%)" (from the method's prune_ratio), "MAT"."""
    cfg = profile["experiments"][experiment]["methods"][method]
    name = cfg.get("name", method)
    if name == "vanilla":
        return "Vanilla"
    if name == "snip":
        return f"SNIP ({float(cfg.get('prune_ratio', 0.5)) * 100:g}%)"
    if name in ("mat", "mat_prune"):
        return "MAT"
    return method_label(profile, experiment, method)


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
