"""The registries of methods, models and measurements: a toy method (with a toy measurement) and a
toy model are added through the registries alone and trained by the real loop; unknown names are
errors naming the registered ones; every name the project lists elsewhere comes from the registries."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import yaml
from torch import nn

from mat import profiles
from mat.models import build_model, model_names, register_model, unregister_model
from mat.policies import build_policy, method_names, parse_method_config, register_method, unregister_method
from mat.policies.base import Decision
from mat.policies.common import PolicyBase
from mat.policies.config import Protecting, choice, integer
from mat.report import labels
from mat.report.labels import method_label, pruning_label
from mat.train import Trainer, load_run_config
from mat.train import measure
from mat.train.run_config import ConfigError, schema

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- a toy method
@dataclass(frozen=True)
class FreezeConfig(Protecting):
    frozen: int = integer(1, lo=1)  # how many of the smallest-norm modules never train
    order: str = choice("smallest", ("smallest", "largest"))


class FreezeSmallest(PolicyBase):
    """Measures every module's weight norm at epoch 0 (a toy measurement), then never updates the
    `frozen` modules with the smallest (or largest) norm; the rest train at every step."""

    def __init__(self, partition, seed, steps_per_epoch, frozen, order, protect):
        super().__init__(partition, seed, steps_per_epoch)
        self.frozen_count, self.order = frozen, order
        self.frozen: torch.Tensor | None = None

    def wants(self, epoch):
        return {"weight_norm"} if self.frozen is None else set()

    def observe(self, epoch, name, values):
        assert name == "weight_norm"
        ranked = torch.argsort(values, descending=self.order == "largest")
        self.frozen = torch.zeros(self.n, dtype=torch.bool)
        self.frozen[ranked[: self.frozen_count]] = True

    def _decision(self, step):
        return Decision(~self.frozen, torch.ones(self.n))


def _weight_norm(run, epoch):
    """Per-module norm of the run partition's weights: a measurement a toy policy asks for."""
    params = dict(run.model.named_parameters())
    return torch.stack([run.partition.gather(params, i).detach().norm() for i in range(len(run.partition))])


@pytest.fixture
def toy_method():
    measure.register_measurement("weight_norm")(_weight_norm)
    register_method("freeze", config=FreezeConfig, label="{model}-Freeze")(FreezeSmallest)
    yield "freeze"
    unregister_method("freeze")
    measure.unregister_measurement("weight_norm")


def test_a_method_registered_alone_is_validated_built_labelled_and_trained(toy_method, run_config, tmp_path, monkeypatch):
    assert "freeze" in method_names()
    # config: defaults, checks naming key, value and what is allowed, unknown keys refused
    assert parse_method_config({"name": "freeze"}) == FreezeConfig(frozen=1, order="smallest", protect=True)
    with pytest.raises(ValueError, match=r"method\.frozen: got 0; expected an integer >= 1"):
        parse_method_config({"name": "freeze", "frozen": 0})
    with pytest.raises(ValueError, match=r"method\.order: got 'median'; expected one of \('smallest', 'largest'\)"):
        parse_method_config({"name": "freeze", "order": "median"})
    with pytest.raises(ValueError, match=r"method\.alpha: not a key of method 'freeze'"):
        parse_method_config({"name": "freeze", "alpha": 0.1})

    # the real loop: run config validation, build_policy, the measurement registry, the optimizer
    cfg = load_run_config(run_config("bert", {"name": "freeze", "frozen": 2}, train={"max_steps": 4}))
    trainer = Trainer(cfg, tmp_path / "run")
    params = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    norms = _weight_norm(trainer, 0)
    trainer.run()
    policy = trainer.policy
    assert isinstance(policy, FreezeSmallest) and policy.method == "freeze" and policy.frozen_count == 2
    assert policy.frozen.sum() == 2 and set(torch.nonzero(policy.frozen).flatten().tolist()) == set(
        torch.argsort(norms)[:2].tolist()
    )
    after = dict(trainer.model.named_parameters())
    for i in range(len(trainer.partition)):
        moved = not torch.equal(trainer.partition.gather(after, i).detach(), trainer.partition.gather(params, i))
        assert moved != bool(policy.frozen[i]), trainer.partition.names[i]

    # the report labels it from its registration (through the snapshot `python -m mat.report.labels` writes)
    assert labels.registered_labels()["methods"]["freeze"]["label"] != labels.snapshot()["methods"].get("freeze")
    written = yaml.safe_load(labels.write_snapshot(tmp_path / "labels.yaml").read_text())
    monkeypatch.setattr(labels, "snapshot", lambda: written)
    profile = _profile({"e": "bert"}, {"freeze": {"name": "freeze"}})
    assert method_label(profile, "e", "freeze") == "BERT-Freeze"
    assert pruning_label(profile, "e", "freeze") == "BERT-Freeze"  # no pruning_label: the row label


def test_registering_twice_or_without_a_method_config_is_an_error(toy_method):
    class Other(PolicyBase):
        pass

    with pytest.raises(ValueError, match="method 'freeze' is already registered"):
        register_method("freeze", config=FreezeConfig, label="x")(Other)
    with pytest.raises(ValueError, match="config FreezeConfig already belongs to method 'freeze'"):
        register_method("freeze2", config=FreezeConfig, label="x")(Other)
    with pytest.raises(TypeError, match="must subclass"):
        register_method("freeze3", config=dict, label="x")(Other)
    assert "freeze2" not in method_names() and "freeze3" not in method_names()


# ----------------------------------------------------------------------------- a toy model
class TinyConvNet(nn.Module):
    """Two conv layers and a classifier: the smallest image model honouring the model contract."""

    def __init__(self, classes: int):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, classes)

    def forward(self, x):
        x = torch.relu(self.conv1(torch.relu(self.conv0(x))))
        return self.head(x.mean(dim=(2, 3)))

    def aux_loss(self):
        return torch.zeros((), device=self.head.weight.device)

    def layer_prefixes(self):
        return ["conv0", "conv1"]


@pytest.fixture
def toy_model():
    register_model("tinyconv", lambda cfg: TinyConvNet(cfg.get("classes", 10)), label="TinyConv", inputs="image")
    yield "tinyconv"
    unregister_model("tinyconv")


def test_a_model_registered_alone_is_validated_built_labelled_and_trained(toy_model, run_config, tmp_path, monkeypatch):
    assert "tinyconv" in model_names() and "tinyconv" in schema()["properties"]["model"]["properties"]["arch"]["enum"]
    cfg = run_config("vgg16", train={"max_steps": 2}, partition=["layer"])
    cfg["model"] = {"arch": "tinyconv"}
    trainer = Trainer(load_run_config(cfg), tmp_path / "run")
    assert isinstance(trainer.model, TinyConvNet) and trainer.partition.names == ["layer0", "layer1"]
    assert trainer.run()["steps"] == 2
    # the data/model check reads the model's input kind; the labels its registration
    text = run_config("bert")
    text["model"] = {"arch": "tinyconv"}
    with pytest.raises(ConfigError, match=r"model\.arch: got 'tinyconv', which does not take text .*with text: bert, switch"):
        load_run_config(text)
    monkeypatch.setattr(labels, "snapshot", labels.registered_labels)
    assert method_label(_profile({"e": "tinyconv"}), "e", "rand") == "TinyConv-Rand"


# ----------------------------------------------------------------------------- unknown names
def test_unknown_names_are_errors_naming_the_registered_ones(run_config):
    part = build_model({"arch": "vgg16", "size": "micro"})
    from mat.models import build_partition

    partition = build_partition(part, ["filter"])
    with pytest.raises(ValueError, match=r"method\.name: got 'mta'; expected one of \(.*'mat'.*'mat_prune'.*'vanilla'"):
        build_policy({"name": "mta"}, partition, seed=0, steps_per_epoch=1)
    with pytest.raises(ValueError, match=r"arch 'resnet' unknown; expected one of \['bert', 'switch', 'vgg16'\]"):
        build_model({"arch": "resnet"})
    bad = run_config("bert")
    bad["model"] = {"arch": "resnet"}
    with pytest.raises(ConfigError, match=r"model\.arch: got 'resnet'; allowed values: 'bert', 'switch', 'vgg16'"):
        load_run_config(bad)
    with pytest.raises(ValueError, match=r"wants measurement 'hessian'; registered measurements: \('mntk', 'snip'\)"):
        measure.wanted({"hessian", "mntk"})
    assert measure.wanted({"snip", "mntk"}) == ["mntk", "snip"]  # registration order, whatever the set's


# ----------------------------------------------------------------------------- one list of names
def test_the_report_labels_are_the_registrations():
    """The report reads labels from a snapshot of the registries (it does not import torch)."""
    assert labels.snapshot() == labels.registered_labels(), (
        "src/mat/schemas/labels.yaml differs from the method/model registrations: run `python -m mat.report.labels`"
    )


def test_every_name_the_project_lists_is_registered():
    """The shipped profiles use registered methods and models only, and Tables 1-3's row labels of
    the paper's methods are the registrations' (the paper's names)."""
    assert {"vanilla", "rand", "multirate", "mat", "snip", "mat_prune"} <= set(method_names())
    assert {"bert", "switch", "vgg16"} <= set(model_names())
    for name in ("tiny", "small", "paper"):
        prof = profiles.load_profile(name)
        for exp in prof["experiments"].values():
            arch = profiles.deep_merge(prof.get("defaults", {}), exp["run"])["model"]["arch"]
            assert arch in model_names()
            assert {m["name"] for m in exp["methods"].values()} <= set(method_names())
    prof = _profile({a: a for a in ("bert", "switch", "vgg16")})
    labels = {a: [method_label(prof, a, m) for m in ("vanilla", "rand", "multirate", "mat", "snip", "mat_prune")]
              for a in ("bert", "switch", "vgg16")}
    assert labels == {
        "bert": ["BERT", "BERT-Rand", "Multirate", "MAT", "SNIP", "MAT + pruning"],
        "switch": ["Switch", "Switch-Rand", "Multirate", "MAT", "SNIP", "MAT + pruning"],
        "vgg16": ["VGG16", "VGG16-Rand", "Multirate", "MAT", "SNIP", "MAT + pruning"],
    }
    table5 = _profile({"t5": "bert"}, {"vanilla": {"name": "vanilla"}, "snip75": {"name": "snip", "prune_ratio": 0.75},
                                        "mat_prune": {"name": "mat_prune"}, "multirate": {"name": "multirate"}})
    assert [pruning_label(table5, "t5", m) for m in ("vanilla", "snip75", "mat_prune", "multirate")] == [
        "Vanilla", "SNIP (75%)", "MAT", "Multirate"]


def _profile(archs: dict[str, str], methods: dict | None = None) -> dict:
    """The least of a profile the labels read: experiment -> its model.arch (and methods)."""
    return {"defaults": {}, "experiments": {e: {"run": {"model": {"arch": a}}, "methods": methods or {}}
                                            for e, a in archs.items()}}
