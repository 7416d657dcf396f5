"""Policies other than MAT: config validation, vanilla, rand, multirate, snip."""

from __future__ import annotations

import io

import pytest
import torch

from mat.partition import Module, ParamSlice, Partition
from mat.policies import build_policy, connection_sensitivity, method_names, parse_method_config
from mat.policies.mat import DEFAULT_ALPHA, DEFAULT_BETA
from mat.policies.groups import lowest_scoring, protection_units


def heads(layers: int, per_layer: int, d: int = 2) -> Partition:
    """`per_layer` heads per layer; head h of layer l owns rows [h*d, (h+1)*d) of `l{l}.q`."""
    return Partition(
        tuple(
            Module(f"l{l}.h{h}", "head", l, h, (ParamSlice(f"l{l}.q", 0, h * d, (h + 1) * d),))
            for l in range(layers)
            for h in range(per_layer)
        )
    )


def layers(n: int) -> Partition:
    return Partition(tuple(Module(f"layer{i}", "layer", i, 0, (ParamSlice(f"b{i}.w"),)) for i in range(n)))


def started(policy, epoch: int = 0):
    policy.start_epoch(epoch)
    return policy


def roundtrip(state: dict) -> dict:
    """Through torch.save / torch.load(weights_only=True), as a checkpoint would go."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


# ----------------------------------------------------------------------------- config
def test_defaults_are_the_papers():
    c = parse_method_config({"name": "mat"})
    # "starts from the 5th epoch and performs every 8 epochs" (B.1): the 5th epoch is 0-based epoch 4
    assert c.protect is True and c.protect_stopped is True and (c.start_epoch, c.interval) == (4, 8)
    assert c.alpha == DEFAULT_ALPHA and c.alpha["head"] == 0.1 and c.alpha["expert"] == 0.2 and c.alpha["filter"] == 0.2
    assert c.beta == DEFAULT_BETA and c.beta["filter"] == 1e-6
    c = parse_method_config({"name": "multirate"})
    assert (c.fraction, c.k, c.variant) == (0.5, 5, "paper")
    c = parse_method_config({"name": "mat_prune"})
    assert (c.prune_ratio, c.prune_epoch) == (0.5, 14)  # "at the 15th epoch" (B.2), 0-based


def test_alpha_scalar_or_per_kind():
    c = parse_method_config({"name": "mat", "alpha": 0.3, "beta": 1.0e-4})
    assert set(c.alpha.values()) == {0.3} and set(c.beta.values()) == {1e-4}
    c = parse_method_config({"name": "mat", "alpha": {"head": 0.15}})
    assert c.alpha == {**DEFAULT_ALPHA, "head": 0.15}


@pytest.mark.parametrize(
    "cfg,needle",
    [
        ({"name": "mta"}, "method.name: got 'mta'; expected one of"),
        ({}, "method.name"),
        ({"name": "mat", "alpha": 1.5}, "method.alpha: got 1.5; expected a number in (0, 1)"),
        ({"name": "mat", "alpha": {"head": 0.0}}, "method.alpha.head: got 0.0"),
        ({"name": "mat", "alpha": {"heads": 0.1}}, "method.alpha: unknown module kind 'heads'"),
        ({"name": "mat", "beta": "1e-3"}, "write 1.0e-3"),
        ({"name": "mat", "fraction": 0.5}, "method.fraction: not a key of method 'mat'"),
        ({"name": "mat", "alhpa": 0.1}, "method.alhpa"),
        ({"name": "rand", "fraction": 0.0}, "method.fraction: got 0.0"),
        ({"name": "multirate", "k": 0}, "method.k: got 0; expected an integer >= 1"),
        ({"name": "multirate", "k": 2.5}, "method.k"),
        ({"name": "multirate", "variant": "linear"}, "method.variant: got 'linear'; expected one of ('paper', 'drift')"),
        ({"name": "mat", "start_epoch": -1}, "method.start_epoch"),
        ({"name": "mat", "interval": 0}, "method.interval"),
        ({"name": "snip", "prune_ratio": 1.0}, "method.prune_ratio: got 1.0"),
        ({"name": "vanilla", "protect": "yes"}, "method.protect: got 'yes'; expected true or false"),
    ],
)
def test_config_errors_name_key_value_and_allowed(cfg, needle):
    with pytest.raises(ValueError) as err:
        parse_method_config(cfg)
    assert needle in str(err.value)


def test_build_policy_validates_and_dispatches():
    part = heads(2, 4)
    assert set(method_names()) >= {"vanilla", "rand", "multirate", "mat", "snip", "mat_prune"}
    for name in method_names():
        assert build_policy({"name": name}, part, seed=0, steps_per_epoch=3).method == name
    with pytest.raises(ValueError, match="steps_per_epoch"):
        build_policy({"name": "vanilla"}, part, seed=0, steps_per_epoch=0)
    with pytest.raises(ValueError, match="method.k"):
        build_policy({"name": "multirate", "k": -1}, part, seed=0, steps_per_epoch=3)


# ----------------------------------------------------------------------------- contract
def test_vanilla_trains_everything_and_checks_the_epoch():
    p = build_policy({"name": "vanilla"}, heads(2, 3), seed=0, steps_per_epoch=4)
    with pytest.raises(RuntimeError, match="start_epoch"):
        p.decide(0)
    p.start_epoch(0)
    d = p.decide(3)
    assert d.active.all() and torch.equal(d.lr_scale, torch.ones(6)) and d.use_grad is None and d.pruned is None
    with pytest.raises(RuntimeError, match="lies in epoch 1"):
        p.decide(4)
    assert p.decide(torch.tensor(2)).active.all()  # integer scalars of any library are steps
    with pytest.raises(ValueError, match="step must be an integer"):
        p.decide(1.0)
    assert p.wants(0) == set() and not p.finished()
    with pytest.raises(ValueError, match="takes no measurement"):
        p.observe(0, "mntk", {})


# ----------------------------------------------------------------------------- rand
def test_rand_exact_fraction_per_layer_and_fresh_each_epoch():
    part = heads(3, 4)
    p = build_policy({"name": "rand", "fraction": 0.5}, part, seed=7, steps_per_epoch=2)
    seen = []
    for epoch in range(6):
        p.start_epoch(epoch)
        d = p.decide(2 * epoch)
        assert torch.equal(d.active, p.decide(2 * epoch + 1).active)  # fixed within the epoch
        for unit in protection_units(part):
            assert int(d.active[unit].sum()) == 2  # 50% of each layer's 4 heads
        seen.append(tuple(d.active.tolist()))
    assert len(set(seen)) > 1  # redrawn across epochs
    q = build_policy({"name": "rand", "fraction": 0.5}, part, seed=8, steps_per_epoch=2)
    assert [tuple(started(q, e).decide(2 * e).active.tolist()) for e in range(6)] != seen  # the seed matters


def test_rand_resume_and_skipped_epochs_make_the_same_choices():
    part = heads(2, 6)
    cfg = {"name": "rand", "fraction": 0.5}
    full = build_policy(cfg, part, seed=1, steps_per_epoch=1)
    choices = [started(full, e).decide(e).active for e in range(8)]

    first = build_policy(cfg, part, seed=1, steps_per_epoch=1)
    for e in range(4):
        first.start_epoch(e)
    state = roundtrip(first.state_dict())
    resumed = build_policy(cfg, part, seed=1, steps_per_epoch=1)
    resumed.load_state_dict(state)
    resumed.start_epoch(3)  # a resumed trainer may start the current epoch again: no redraw
    assert torch.equal(resumed.decide(3).active, choices[3])
    for e in range(4, 8):
        assert torch.equal(started(resumed, e).decide(e).active, choices[e])

    skipping = build_policy(cfg, part, seed=1, steps_per_epoch=1)
    assert torch.equal(started(skipping, 5).decide(5).active, choices[5])  # choices depend on (seed, epoch) only
    with pytest.raises(ValueError, match="after epoch 5"):
        skipping.start_epoch(4)


def test_rand_protecting_strategy():
    part = heads(3, 4)
    on = started(build_policy({"name": "rand", "fraction": 0.1}, part, seed=0, steps_per_epoch=1))
    assert [int(on.decide(0).active[u].sum()) for u in protection_units(part)] == [1, 1, 1]
    off = started(build_policy({"name": "rand", "fraction": 0.1, "protect": False}, part, seed=0, steps_per_epoch=1))
    assert int(off.decide(0).active.sum()) == 0  # round(0.4) = 0 per layer, nothing protects it


def test_rand_on_whole_layers_selects_across_layers():
    part = layers(4)
    p = started(build_policy({"name": "rand"}, part, seed=0, steps_per_epoch=1))
    assert protection_units(part) == [[0, 1, 2, 3]]
    assert int(p.decide(0).active.sum()) == 2  # half of the layers, not every (singleton) layer


def test_state_from_another_configuration_is_refused():
    a = build_policy({"name": "rand", "fraction": 0.5}, heads(2, 4), seed=0, steps_per_epoch=1)
    with pytest.raises(ValueError, match="rand settings"):
        build_policy({"name": "rand", "fraction": 0.25}, heads(2, 4), seed=0, steps_per_epoch=1).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="method"):
        build_policy({"name": "vanilla"}, heads(2, 4), seed=0, steps_per_epoch=1).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="modules"):
        build_policy({"name": "rand"}, heads(2, 5), seed=0, steps_per_epoch=1).load_state_dict(a.state_dict())


# ----------------------------------------------------------------------------- multirate
def test_multirate_paper_decisions():
    part = heads(2, 4)
    p = build_policy({"name": "multirate"}, part, seed=0, steps_per_epoch=10)
    fast = p.fast
    assert [int(fast[u].sum()) for u in protection_units(part)] == [2, 2]  # 50/50 per layer
    for step in range(20):
        if step % 10 == 0:
            p.start_epoch(step // 10)
        d = p.decide(step)
        assert torch.equal(p.fast, fast)  # the split never changes
        assert d.active[fast].all() and torch.equal(d.lr_scale[fast], torch.ones(4))
        slow_step = step % 5 == 4
        assert bool(d.active[~fast].all()) == slow_step and bool(d.active[~fast].any()) == slow_step
        assert torch.equal(d.lr_scale[~fast], torch.full((4,), 5.0))
        assert d.use_grad is None


def test_multirate_drift_decisions():
    p = build_policy({"name": "multirate", "variant": "drift", "k": 4}, heads(1, 4), seed=2, steps_per_epoch=100)
    p.start_epoch(0)
    for step in range(9):
        d = p.decide(step)
        assert d.active.all()
        assert torch.allclose(d.lr_scale, torch.where(p.fast, 1.0, 0.25))
        assert torch.equal(d.use_grad, p.fast | torch.tensor(step % 4 == 3))


def test_multirate_split_is_seeded_and_resumable():
    part = heads(2, 6)
    a = build_policy({"name": "multirate"}, part, seed=5, steps_per_epoch=1)
    b = build_policy({"name": "multirate"}, part, seed=6, steps_per_epoch=1)
    assert torch.equal(a.fast, build_policy({"name": "multirate"}, part, seed=5, steps_per_epoch=1).fast)
    assert not torch.equal(a.fast, b.fast)
    b2 = build_policy({"name": "multirate"}, part, seed=5, steps_per_epoch=1)
    b2.seed = 99  # the loaded state, not the constructor, decides
    b2.fast = ~b2.fast
    b2.load_state_dict(roundtrip(a.state_dict()))
    assert torch.equal(b2.fast, a.fast)


def test_multirate_protects_one_fast_module_per_layer():
    part = heads(3, 3)
    p = build_policy({"name": "multirate", "fraction": 0.1}, part, seed=0, steps_per_epoch=1)
    assert [int(p.fast[u].sum()) for u in protection_units(part)] == [1, 1, 1]


# ----------------------------------------------------------------------------- snip
def test_connection_sensitivity_by_hand():
    part = Partition(
        (
            Module("A", "head", 0, 0, (ParamSlice("w", 0, 0, 1), ParamSlice("b", 0, 0, 1))),
            Module("B", "head", 0, 1, (ParamSlice("w", 0, 1, 2), ParamSlice("b", 0, 1, 2))),
            Module("C", "expert", 0, 0, (ParamSlice("e"),)),
        )
    )
    params = {"w": torch.tensor([[1.0, -2.0], [3.0, 0.5]]), "b": torch.tensor([2.0, -1.0]), "e": torch.tensor([4.0])}
    grads = {"w": torch.tensor([[0.5, 1.0], [-1.0, 4.0]]), "b": torch.tensor([-3.0, 1.0]), "e": torch.tensor([0.25])}
    a = abs(1.0 * 0.5) + abs(-2.0 * 1.0) + abs(2.0 * -3.0)  # 8.5
    b = abs(3.0 * -1.0) + abs(0.5 * 4.0) + abs(-1.0 * 1.0)  # 6.0
    c = abs(4.0 * 0.25)  # 1.0
    got = connection_sensitivity(params, grads, part)
    assert torch.allclose(got, torch.tensor([a, b, c], dtype=torch.float64) / (a + b + c))
    with pytest.raises(ValueError, match="no gradient for parameter 'e'"):
        connection_sensitivity(params, {"w": grads["w"], "b": grads["b"]}, part)
    with pytest.raises(ValueError, match="all zero"):
        connection_sensitivity(params, {k: torch.zeros_like(v) for k, v in grads.items()}, part)


def test_snip_prunes_the_lowest_scores_with_protection():
    part = heads(2, 4)
    p = build_policy({"name": "snip", "prune_ratio": 0.5}, part, seed=0, steps_per_epoch=2)
    assert p.wants(0) == {"snip"}
    with pytest.raises(RuntimeError, match="before the connection sensitivity"):
        started(p).decide(0)
    # layer 0 holds the four lowest scores; protection keeps its best (l0.h3) and prunes l1.h0 instead
    scores = torch.tensor([0.01, 0.02, 0.03, 0.04, 0.10, 0.20, 0.30, 0.29])
    p.observe(0, "snip", scores)
    assert p.wants(0) == set() and p.wants(1) == set()
    d = p.decide(1)
    assert d.pruned.tolist() == [True, True, True, False, True, False, False, False]
    assert torch.equal(d.active, ~d.pruned)
    assert torch.equal(started(p, 1).decide(2).pruned, d.pruned)  # pruned for good
    q = build_policy({"name": "snip", "prune_ratio": 0.5, "protect": False}, part, seed=0, steps_per_epoch=2)
    q.observe(0, "snip", scores)
    assert started(q).decide(0).pruned.tolist() == [True] * 4 + [False] * 4

    r = build_policy({"name": "snip", "prune_ratio": 0.5}, part, seed=0, steps_per_epoch=2)
    r.load_state_dict(roundtrip(p.state_dict()))
    assert torch.equal(r.decide(3).pruned, d.pruned) and r.wants(2) == set()


def test_pruning_ranks_each_kind_separately():
    part = Partition(
        tuple(Module(f"h{i}", "head", 0, i, (ParamSlice("q", 0, i, i + 1),)) for i in range(4))
        + tuple(Module(f"e{i}", "expert", 0, i, (ParamSlice(f"e{i}"),)) for i in range(2))
    )
    scores = torch.tensor([0.5, 0.6, 0.7, 0.8, 0.1, 0.2])  # experts score lowest overall
    picked = lowest_scoring(part, scores, 0.5, protect=True)
    assert picked.tolist() == [True, True, False, False, True, False]
