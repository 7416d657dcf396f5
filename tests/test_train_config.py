"""Run configs: schema + owners' validation with errors that name the key, the value and what is
allowed; defaults filled; `--set` overrides; and the CLI's exit codes and messages."""

from __future__ import annotations

import json

import pytest
import yaml

from mat.__main__ import main
from mat.train import ConfigError, load_run_config
from mat.train.run_config import apply_overrides, schema

MINIMAL = {
    "data": {"name": "tiny-text", "dir": "somewhere"},
    "model": {"arch": "bert", "size": "micro"},
    "method": {"name": "vanilla"},
    "optim": {"name": "adamw", "lr": 1.0e-3},
    "train": {"batch_size": 8, "epochs": 2},  # batch_size is required (no default fits every model)
}


def _with(**changes) -> dict:
    cfg = json.loads(json.dumps(MINIMAL))
    for path, value in changes.items():
        keys = path.split("__")
        target = cfg
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value
    return cfg


def test_minimal_config_gets_every_default_from_the_schema():
    cfg = load_run_config(MINIMAL)
    assert cfg["seed"] == 0 and cfg["device"] == "auto" and cfg["partition"] == ["head"]
    assert cfg["data"] == {"name": "tiny-text", "dir": "somewhere", "vocab_size": 2000, "seq_len": 64,
                           "mask_prob": 0.15, "cache_dir": None, "augment": True}
    assert cfg["train"] == {"batch_size": 8, "epochs": 2, "max_steps": None, "eval_every": 50, "eval_batches": None,
                            "eval_batch_size": 32, "log_every": 10, "checkpoint_every": 100, "grad_clip": None,
                            "aux_loss_coef": 0.01, "gpus": 1, "precision": "fp32",
                            "compile": False, "compile_backend": "inductor"}
    assert cfg["ntk"] == {"samples": 64, "resample": False, "chunk_size": 16, "memory_gb": 4, "top_k": 16, "log_every": None, "log_kinds": [],
                          "effective_rank": True}
    # Every default in the result is the schema's (one place where defaults are written).
    props = schema()["properties"]
    for block in ("train", "ntk"):
        for key, sub in props[block]["properties"].items():
            if key not in ("epochs", "batch_size"):  # given in MINIMAL (batch_size is required)
                assert cfg[block][key] == sub["default"], (block, key)
    no_dir = load_run_config({**MINIMAL, "data": {"name": "wikitext2"}})
    assert no_dir["data"]["dir"] == "data/wikitext2"


@pytest.mark.parametrize(
    "cfg, expected",
    [
        ({**MINIMAL, "trian": {}}, r"trian: unknown key \(did you mean 'train'\?\)"),
        (_with(train__batch_sise=4), r"train\.batch_sise: unknown key \(did you mean 'batch_size'\?\)"),
        (_with(data__name="wikitext3"), r"data\.name: got 'wikitext3'; allowed values: .*'wikitext2'"),
        (_with(device="gpu"), r"device: got 'gpu'; allowed values: 'auto', 'cpu', 'cuda'"),
        (_with(train__batch_size="eight"), r"train\.batch_size: expected integer, got 'eight'"),
        (_with(train__batch_size=0), r"train\.batch_size: got 0"),
        (_with(train__grad_clip="1e-3"), r"train\.grad_clip: expected number or null, got '1e-3' \(YAML 1\.1 .* 1\.0e-3\)"),
        (_with(ntk__log_kinds=["heads"]), r"ntk\.log_kinds\.0: got 'heads'; allowed values: .*'head'.*did you mean 'head'"),
        (_with(partition=["filters"]), r"partition\.0: got 'filters'"),
        ({k: v for k, v in MINIMAL.items() if k != "optim"}, r"optim: missing \(required\)"),
        ({**MINIMAL, "train": {"epochs": 2}}, r"train\.batch_size: missing \(required\)"),
        (_with(train__max_steps=10), r"exactly one of train\.epochs and train\.max_steps"),
        (_with(model__arch="vgg16"), r"model\.arch: got 'vgg16', which does not take text data"),
        (_with(model__vocab_size=100), r"model\.vocab_size: is filled in from the data"),
        (_with(method__name="mta"), r"method\.name: got 'mta'"),
        (_with(method={"name": "mat", "alpha": 1.5}), r"method\.alpha: got 1\.5"),
        (_with(method={"name": "mat", "beta": "1e-3"}), r"method\.beta: got '1e-3'.*write 1\.0e-3"),
        (_with(optim__lr=-1), r"optim\.lr: got -1"),
        (_with(optim__momentum=0.9), r"optim\.momentum: not a key of optimizer 'adamw'"),
        (_with(model__layerz=3), r"model config \(bert\): unknown key\(s\) \['layerz'\]"),
        (_with(partition=["expert"]), r"partition: 'expert' does not apply to model\.arch 'bert'"),
        (_with(ntk__log_kinds=["filter"]), r"ntk\.log_kinds: 'filter' does not apply to model\.arch 'bert'"),
        (_with(data__seq_len=65), r"model: this bert cannot take inputs of data\.seq_len=65"),
    ],
)
def test_config_errors_name_the_key_the_value_and_the_allowed_values(cfg, expected):
    with pytest.raises(ConfigError, match=expected):
        load_run_config(cfg)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_run_config(_with(device="gpu", train__log_evry=3))
    assert "device: got 'gpu'" in str(info.value) and "train.log_evry: unknown key" in str(info.value)


def test_set_overrides_parse_yaml_values_and_reject_bad_paths():
    cfg = apply_overrides(MINIMAL, ["data.seq_len=32", "train.grad_clip=1.0", "ntk.log_kinds=[layer]", "seed=3"])
    assert cfg["data"]["seq_len"] == 32 and cfg["train"]["grad_clip"] == 1.0
    assert cfg["ntk"]["log_kinds"] == ["layer"] and cfg["seed"] == 3
    assert MINIMAL["data"] == {"name": "tiny-text", "dir": "somewhere"}  # the input is not modified
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        apply_overrides(MINIMAL, ["data.seq_len"])
    with pytest.raises(ConfigError, match="model.arch is 'bert', not a mapping"):
        apply_overrides(MINIMAL, ["model.arch.x=1"])
    with pytest.raises(ConfigError, match=r"data\.seq_lenn: unknown key \(did you mean 'seq_len'\?\)"):
        load_run_config(MINIMAL, ["data.seq_lenn=32"])


# ------------------------------------------------------------------------------------- the CLI
def _write(tmp_path, cfg) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_cli_bad_config_exits_2_with_the_message_and_no_traceback(tmp_path, capsys):
    code = main(["train", "--config", _write(tmp_path, _with(train__batch_sise=4)), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "train.batch_sise: unknown key (did you mean 'batch_size'?)" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
    assert main(["train", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.yaml not found" in capsys.readouterr().err


def test_cli_missing_data_names_the_folder_and_the_command_and_trains_nothing(tmp_path, capsys):
    cfg = _with(data__dir=str(tmp_path / "absent"))
    code = main(["train", "--config", _write(tmp_path, cfg), "--out", str(tmp_path / "o"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"data folder {tmp_path / 'absent'} not found" in err
    assert f"python -m mat data get tiny-text --out {tmp_path / 'absent'}" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.usefixtures("one_thread")
def test_cli_trains_with_overrides_then_recognises_the_finished_run(run_config, tmp_path, capsys):
    path = _write(tmp_path, run_config("bert", train={"max_steps": 2, "eval_every": 2}))
    out = str(tmp_path / "o")
    assert main(["train", "--config", path, "--out", out, "--set", "seed=4", "--quiet"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["seed"] == 4 and summary["steps"] == 2
    assert "done, 2 steps" in capsys.readouterr().err
    assert main(["train", "--config", path, "--out", out, "--set", "seed=4", "--quiet"]) == 0
    assert "already complete" in capsys.readouterr().err
    assert main(["train", "--config", path, "--out", out, "--quiet"]) == 2  # seed 0 now: a different run
    assert "different config" in capsys.readouterr().err
