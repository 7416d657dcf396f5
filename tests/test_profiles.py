"""Profiles: schema validation with clear errors, run configs resolved by merging, same experiments everywhere."""

import pytest
import yaml

from mat import profiles

PROFILES = ("tiny", "small", "paper")


@pytest.mark.parametrize("name", PROFILES)
def test_shipped_profiles_validate(name):
    prof = profiles.load_profile(name)
    assert prof["profile"] == name
    assert len(list(profiles.runs(prof))) == sum(
        len(e["methods"]) * len(e.get("seeds", prof["seeds"])) for e in prof["experiments"].values()
    )


def test_profiles_differ_only_in_numbers():
    """Same experiments, same methods, same module kinds and architectures in every profile."""
    loaded = {n: profiles.load_profile(n) for n in PROFILES}
    shape = {
        n: {
            e: (sorted(x["methods"]), x["run"]["partition"], x["run"]["model"]["arch"])
            for e, x in p["experiments"].items()
        }
        for n, p in loaded.items()
    }
    assert shape["tiny"] == shape["small"] == shape["paper"]


def test_run_config_merges_defaults_experiment_and_method():
    prof = profiles.load_profile("tiny")
    cfg = profiles.run_config(prof, "table1", "mat", 1)
    assert cfg["seed"] == 1
    assert cfg["method"]["name"] == "mat" and cfg["method"]["alpha"] == 0.1
    assert cfg["data"]["dir"] == "data/tiny-text" and "dataset" not in cfg["data"]
    assert cfg["ntk"]["chunk_size"] == prof["defaults"]["ntk"]["chunk_size"]  # from defaults
    assert cfg["ntk"]["log_kinds"] == ["layer"]  # experiment overrides defaults


def _write(tmp_path, data, name="custom"):
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def test_unknown_profile_names_the_file_and_the_choices(tmp_path):
    _write(tmp_path, {"profile": "tiny"}, "tiny")
    with pytest.raises(profiles.ProfileError, match=r"unknown profile 'tiyn'.*available profiles: tiny.*did you mean 'tiny'"):
        profiles.load_profile("tiyn", tmp_path)


def test_schema_error_names_the_key_path(tmp_path):
    good = yaml.safe_load(open("config/profiles/tiny.yaml"))
    bad = dict(good)
    bad["profile"] = "custom"
    bad["experiments"] = {"table1": dict(good["experiments"]["table1"])}
    bad["experiments"]["table1"]["methods"] = {"mat": {"alpha": 0.1}}
    _write(tmp_path, bad)
    with pytest.raises(profiles.ProfileError, match=r"experiments\.table1\.methods\.mat: 'name' is a required property"):
        profiles.load_profile("custom", tmp_path)


def test_unknown_method_name_is_refused_naming_the_registered_ones(tmp_path):
    """Method names are checked against the method registry (mat.policies) when the runs are checked."""
    good = yaml.safe_load(open("config/profiles/tiny.yaml"))
    good["profile"] = "custom"
    good["experiments"]["table1"]["methods"]["mat"] = {"name": "matt"}
    prof = profiles.load_profile("custom", _write(tmp_path, good))
    with pytest.raises(profiles.ProfileError, match=r"experiment 'table1', method 'mat': method\.name: got 'matt'; expected one of .*'mat_prune'"):
        profiles.check_runs(prof, models=False)


def test_unknown_dataset_is_refused(tmp_path):
    good = yaml.safe_load(open("config/profiles/tiny.yaml"))
    good["profile"] = "custom"
    good["experiments"]["table1"]["run"]["data"]["dataset"] = "wikitext9"
    _write(tmp_path, good)
    with pytest.raises(profiles.ProfileError, match=r"data\.dataset is 'wikitext9'; expected one of the profile's datasets"):
        profiles.load_profile("custom", tmp_path)


def test_unknown_experiment_or_method():
    prof = profiles.load_profile("tiny")
    with pytest.raises(profiles.ProfileError, match="no experiment 'table9'"):
        profiles.run_config(prof, "table9", "mat", 0)
    with pytest.raises(profiles.ProfileError, match="no method 'sgd'"):
        profiles.run_config(prof, "table1", "sgd", 0)
