"""Pruning removes the pruned heads from the computation (Table 5; Appendix B.2: "pruning methods
eliminate the forward and backward propagations of pruned modules"): the pruned model computes
the zeroed model's function, its measured forward FLOPs drop by exactly the pruned heads' own
matmuls, and a run resumed across the pruning epoch ends with the uninterrupted run's outputs."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from mat.models import build_model
from mat.train import Trainer, load_run_config, train
from test_train_resume import Interrupted, assert_same_outputs, interrupt_at

pytestmark = pytest.mark.usefixtures("one_thread")

SNIP = {"name": "snip", "prune_ratio": 0.5}
MAT_PRUNE = {"name": "mat_prune", "start_epoch": 1, "interval": 1, "alpha": 0.5, "prune_ratio": 0.5, "prune_epoch": 1}


def _run(run_config, tmp_path, name: str, method: dict, **train_keys) -> Trainer:
    cfg = load_run_config(run_config("bert", method, train={"max_steps": 3, **train_keys}))
    trainer = Trainer(cfg, tmp_path / name)
    trainer.run()
    return trainer


def _head_forward_flops(trainer: Trainer, rows: int) -> int:
    """One head's own forward matmuls for `rows` sequences of T tokens, analytically (2 FLOPs per
    multiply-add): its q, k, v rows and output-projection columns, 4 x (2 N H d) with N = rows * T,
    and its attention scores Q K^T and context P V, 2 x (2 rows T^2 d)."""
    c = trainer.model.config
    t, h = trainer.cfg["data"]["seq_len"], c.hidden_size
    d = h // c.num_attention_heads
    return 4 * 2 * rows * t * h * d + 2 * 2 * rows * t * t * d


def test_pruned_model_computes_the_zeroed_models_logits_without_the_pruned_heads(run_config, tmp_path):
    trainer = _run(run_config, tmp_path, "snip", SNIP, max_steps=1)
    model, pruned = trainer.model, trainer.pruned
    assert int(pruned.sum()) == 2  # micro BERT: 2 layers x 2 heads, one per layer (protecting strategy)

    # The reference: the same weights (pruned slices zero) in a plain BertMLM, every head computed.
    zeroed = build_model({**trainer.cfg["model"], **trainer.task.model_options()})
    zeroed.load_state_dict(model.state_dict())
    for m in pruned.nonzero().flatten().tolist():
        for s in trainer.partition.modules[m].slices:
            p = zeroed.get_parameter(s.param)
            assert not p[s.index(p.dim())].any()
    widths = []
    hooks = [mod.register_forward_hook(lambda mod, a, y: widths.append(y.shape[-1]))
             for name, mod in model.named_modules() if name.endswith(("self.query", "self.key", "self.value"))]
    x = torch.randint(0, 200, (4, 32))
    model.eval(), zeroed.eval()
    with torch.no_grad():
        got, want = model(x), zeroed(x)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    d = model.config.hidden_size // model.config.num_attention_heads
    assert widths == [d] * 6  # q, k, v of both layers carry the one kept head only


def test_measured_forward_flops_drop_by_the_pruned_heads_own_matmuls(run_config, tmp_path):
    vanilla = _run(run_config, tmp_path, "vanilla", {"name": "vanilla"})
    snip = _run(run_config, tmp_path, "snip", SNIP)
    n_train = snip.task.n_train  # max_steps 3 = one epoch: every training sequence once
    assert snip.total_steps == snip.steps_per_epoch == 3
    fwd = {
        name: int(pd.read_csv(tmp_path / name / "metrics.csv").query("split == 'train'").flops_fwd.iloc[-1])
        for name in ("vanilla", "snip")
    }
    pruned = int(snip.pruned.sum())
    assert pruned == 2
    assert fwd["vanilla"] - fwd["snip"] == pruned * _head_forward_flops(snip, n_train)
    # Their backward is gone too: weight and input gradients of the pruned heads' matmuls.
    bwd = {name: pd.read_csv(tmp_path / name / "metrics.csv").flops_bwd.iloc[-1] for name in ("vanilla", "snip")}
    assert bwd["snip"] < bwd["vanilla"] - pruned * _head_forward_flops(snip, n_train)


def test_run_resumed_across_the_pruning_epoch_ends_with_the_uninterrupted_outputs(run_config, tmp_path, monkeypatch):
    train_cfg = {"max_steps": 9, "checkpoint_every": 4, "eval_every": 3, "log_every": 2}
    cfg = load_run_config(run_config("bert", MAT_PRUNE, train=train_cfg, ntk={"log_every": 2}))
    straight = Trainer(cfg, tmp_path / "straight")
    straight.run()
    assert straight.step == 9 and int(straight.pruned.sum()) == 2  # pruned at step 3 (epoch 1)

    out = tmp_path / "resumed"
    with monkeypatch.context() as m:
        interrupt_at(m, 6)  # the checkpoint at step 4 holds the pruned model
        with pytest.raises(Interrupted):
            train(cfg, out)
    train(cfg, out)
    assert_same_outputs(tmp_path / "straight", out)

    # The pruned heads left the computation for epochs 1-2 (steps 3-8: every sequence twice).
    vanilla_cfg = load_run_config(run_config("bert", {"name": "vanilla"}, train=train_cfg, ntk={"log_every": None}))
    train(vanilla_cfg, tmp_path / "vanilla")
    fwd = {name: int(pd.read_csv(tmp_path / name / "metrics.csv").flops_fwd.iloc[-1]) for name in ("vanilla", "resumed")}
    assert fwd["vanilla"] - fwd["resumed"] == 2 * 2 * _head_forward_flops(straight, straight.task.n_train)


def test_removed_heads_leave_the_gradients_of_the_trained_heads_unchanged():
    """With heads removed and some kept heads frozen, the active heads' gradients (the partial
    backward's gather of kept rows/columns) are the zeroed plain model's."""
    from mat.backward import install_partial_backward
    from mat.models import build_partition

    torch.manual_seed(0)
    model = build_model({"arch": "bert", "size": "micro", "vocab_size": 50, "dropout": 0.0, "attn_dropout": 0.0})
    part = build_partition(model, ["head"])
    removed = torch.tensor([True, False, False, True])  # layer0.head0, layer1.head1
    active = torch.tensor([False, False, True, False])  # layer0.head1 frozen, layer1.head0 trained
    params = dict(model.named_parameters())
    with torch.no_grad():
        for i in removed.nonzero().flatten().tolist():
            for s in part.modules[i].slices:
                params[s.param][s.index(params[s.param].dim())] = 0
    x = torch.randint(0, 50, (3, 16))
    want = dict(zip(params, torch.autograd.grad(model(x).square().sum(), list(params.values()))))

    pb = install_partial_backward(model, part)
    pb.set_removed(removed)
    pb.set_active(active)
    y = model(x).square().sum()
    trained = [n for n, p in params.items() if p.requires_grad]
    got = dict(zip(trained, torch.autograd.grad(y, [params[n] for n in trained])))
    assert not params["net.bert.encoder.layer.0.attention.self.query.weight"].requires_grad  # nothing active there
    for i in active.nonzero().flatten().tolist():
        for s in part.modules[i].slices:
            idx = s.index(params[s.param].dim())
            torch.testing.assert_close(got[s.param][idx], want[s.param][idx], rtol=1e-5, atol=1e-6)
    for name in ("net.bert.embeddings.word_embeddings.weight", "net.bert.encoder.layer.0.intermediate.dense.weight"):
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6)


def test_only_heads_of_a_model_that_allows_it_can_be_removed():
    """BERT's heads can leave the computation; the Switch Transformer's (a per-head relative
    position bias), its experts and VGG's filters are zeroed only, and removing one is refused."""
    from mat.backward import install_partial_backward
    from mat.models import build_partition, removable_modules

    bert = build_model({"arch": "bert", "size": "micro", "vocab_size": 50})
    assert removable_modules(bert, build_partition(bert, ["head"])).tolist() == [True] * 4
    assert removable_modules(bert, build_partition(bert, ["layer"])).tolist() == [False] * 2
    switch = build_model({"arch": "switch", "size": "micro", "vocab_size": 50})
    vgg = build_model({"arch": "vgg16", "size": "micro"})
    for model, kinds in ((switch, ["head", "expert"]), (vgg, ["filter"])):
        part = build_partition(model, kinds)
        assert not removable_modules(model, part).any()
        # The partial backward refuses what is not rows/columns of an nn.Linear (an expert's whole
        # tensors, a filter's conv channel); which heads may go is the model's word, above.
        pb = install_partial_backward(model, part)
        with pytest.raises(ValueError, match="cannot be removed"):
            pb.set_removed(torch.arange(len(part)) == len(part) - 1)


def test_a_layer_with_every_head_pruned_still_computes_the_zeroed_model():
    """Without the protecting strategy a layer can lose all its heads: it then keeps computing
    them with zero weights (attention needs one head); the other layer's pruned head is removed."""
    from mat.backward import install_partial_backward
    from mat.models import build_partition

    torch.manual_seed(0)
    model = build_model({"arch": "bert", "size": "micro", "vocab_size": 50}).eval()
    part = build_partition(model, ["head"])
    removed = torch.tensor([True, True, True, False])
    params = dict(model.named_parameters())
    with torch.no_grad():
        for i in removed.nonzero().flatten().tolist():
            for s in part.modules[i].slices:
                params[s.param][s.index(params[s.param].dim())] = 0
    x = torch.randint(0, 50, (3, 16))
    with torch.no_grad():
        want = model(x)
        pb = install_partial_backward(model, part)
        pb.set_removed(removed)
        pb.set_active(~removed)
        widths = []
        hooks = [model.get_submodule(f"net.bert.encoder.layer.{i}.attention.self.query").register_forward_hook(
            lambda mod, a, y: widths.append(y.shape[-1])) for i in (0, 1)]
        got = model(x)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert widths == [16, 8]


def test_paper_accounting_does_not_subtract_removed_heads_twice(run_config, tmp_path):
    """A pruned head is out of the forward, so the paper's accounting must not subtract its forward
    FLOPs again as a 'frozen' module: per-module forward FLOPs counted before pruning (MAT-prune
    prunes mid-run) are not reused after it."""
    from mat.flops import MeasuredComputeMeter

    trainer = _run(run_config, tmp_path, "snip", SNIP, max_steps=1)
    pruned, pb = trainer.pruned.clone(), trainer.backward
    meter = MeasuredComputeMeter(trainer.model, trainer.partition, partial_backward=pb)
    x = torch.randint(0, 200, (4, trainer.cfg["data"]["seq_len"]))
    pb.set_removed(torch.zeros_like(pruned))  # before pruning: every head in the forward
    assert meter.frozen_forward(x, ~pruned) > 0
    pb.set_removed(pruned)  # after: the pruned heads cost nothing, and only they are not updated
    assert meter.frozen_forward(x, ~pruned) == 0
