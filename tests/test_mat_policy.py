"""MAT (Algorithm 1) and MAT-prune, driven by synthetic mNTK eigenvalues with hand-computed outcomes."""

from __future__ import annotations

import io
import json

import pytest
import torch

from mat.partition import Module, ParamSlice, Partition
from mat.policies import build_policy


def heads(layers: int, per_layer: int) -> Partition:
    return Partition(
        tuple(
            Module(f"l{l}.h{h}", "head", l, h, (ParamSlice(f"l{l}.q", 0, 2 * h, 2 * h + 2),))
            for l in range(layers)
            for h in range(per_layer)
        )
    )


def eigs(part: Partition, lmax, rest=(0.1, 0.0)) -> dict[str, torch.Tensor]:
    """Module i gets eigenvalues [lmax[i], *rest] (descending, as the mNTK code hands them over)."""
    return {name: torch.tensor([float(v), *rest]) for name, v in zip(part.names, lmax)}


def at(policy, epoch: int, values=None):
    """One epoch start as the trainer does it: wants -> observe -> start_epoch; returns the decision."""
    if values is not None:
        assert policy.wants(epoch) == {"mntk"}
        policy.observe(epoch, "mntk", values)
    else:
        assert policy.wants(epoch) == set()
    policy.start_epoch(epoch)
    return policy.decide(epoch * policy.steps_per_epoch)


def column(policy, key):
    return [row[key] for row in policy.report()["modules"]]


def roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


CFG = {"name": "mat", "alpha": 0.35, "beta": 0.1, "start_epoch": 2, "interval": 3}


def test_warm_up_trains_everything_and_evaluations_follow_the_schedule():
    part = heads(2, 3)
    p = build_policy(CFG, part, seed=0, steps_per_epoch=2)
    for epoch in (0, 1):
        assert at(p, epoch).active.all()  # Algorithm 1, line 1: I = M during warm-up
    assert [e for e in range(12) if p.wants(e)] == [2, 5, 8, 11]
    with pytest.raises(ValueError, match="no mNTK was asked for at epoch 3"):
        p.observe(3, "mntk", eigs(part, [1] * 6))


def test_eq4_threshold_eq5_split_and_protection_by_hand():
    part = heads(2, 3)
    p = build_policy(CFG, part, seed=0, steps_per_epoch=1)
    at(p, 0), at(p, 1)
    values = {
        "l0.h0": torch.tensor([10.0, 1.0, 0.5]),
        "l0.h1": torch.tensor([6.0, 2.0, 0.2]),
        "l0.h2": torch.tensor([1.0, 0.5, 0.1]),
        "l1.h0": torch.tensor([2.0, 1.0, 0.3]),
        "l1.h1": torch.tensor([1.5, 0.4, 0.0]),  # the smallest eigenvalue of all: 0.0
        "l1.h2": torch.tensor([3.0, 0.5, 0.2]),
    }
    d = at(p, 2, values)
    threshold = 0.0 + 0.35 * (10.0 - 0.0)  # Eq. 4 over ALL eigenvalues: 3.5
    assert p.report()["thresholds"] == {"head": pytest.approx(threshold)}
    assert column(p, "information") == [True, True, False, False, False, False]  # Eq. 5: lambda_max >= 3.5
    # layer 1 is all nuisance: the protecting strategy keeps its largest lambda_max (l1.h2) active
    assert column(p, "protected") == [False, False, False, False, False, True]
    assert d.active.tolist() == [True, True, False, False, False, True]
    assert at(p, 3).active.tolist() == d.active.tolist()  # fixed between evaluations (lines 15-19)

    q = build_policy({**CFG, "protect": False}, part, seed=0, steps_per_epoch=1)
    at(q, 0), at(q, 1)
    assert at(q, 2, values).active.tolist() == [True, True, False, False, False, False]


def test_eq6_temporal_policy_stops_for_good_with_the_delta1_guard():
    """lambda_max per evaluation t = 0..4 (epochs 2, 5, 8, 11, 14); every module's other
    eigenvalues are 0.1 and 0.0, so Eq. 4 gives lambda_alpha = 0.35 * max(lambda_max)."""
    part = heads(2, 3)
    p = build_policy(CFG, part, seed=0, steps_per_epoch=1)
    lmax = [  # l0.h0  l0.h1  l0.h2  l1.h0  l1.h1  l1.h2
        [10.0, 6.0, 1.0, 2.0, 1.5, 3.0],  # t=0: lambda_max_0
        [12.0, 4.0, 2.0, 2.0, 1.5, 3.3],  # t=1: Delta_1 = [2, 2, 1, 0, 0, 0.3]
        [12.1, 7.0, 3.0, 2.0, 2.5, 3.9],  # t=2: Delta_2 = [2.1, 1, 2, 0, 1, 0.9]
        [20.0, 7.0, 9.0, 2.0, 2.5, 3.0],  # t=3: Delta_3 = [10, 1, 8, 0, 1, 0]
        [20.0, 7.0, 9.0, 2.0, 2.5, 3.0],  # t=4: nothing moves any more
    ]
    for epoch in range(2):
        at(p, epoch)
    plan = []
    for t, row in enumerate(lmax):
        for epoch in range(2 + 3 * t, 2 + 3 * t + 3):
            d = at(p, epoch, eigs(part, row) if epoch == 2 + 3 * t else None)
        plan.append((d.active.tolist(), column(p, "stopped"), column(p, "information"), p.report()["thresholds"]["head"],
                     p.finished()))
        if t == 2:
            stopped_epoch = column(p, "stopped_epoch")

    # t=0 and t=1: Eq. 6 is not applied yet (it needs Delta_1 and Delta_{t-1})
    assert plan[0][0] == [True, True, False, False, False, True] and not any(plan[0][1])
    assert plan[1][0] == [True, False, False, False, False, True] and not any(plan[1][1])
    assert plan[1][3] == pytest.approx(0.35 * 12.0)
    # t=2: l0.h0 |2.1 - 2| / 2 = 0.05 < 0.1 -> stopped for good although Eq. 5 calls it information;
    #      l1.h0 Delta_1 = 0 and Delta_2 == Delta_1 -> guard ratio 0 -> stopped;
    #      l1.h1 Delta_1 = 0 but Delta_2 = 1 != 0 -> guard ratio inf -> keeps going
    assert plan[2][1] == [True, False, False, True, False, False]
    assert plan[2][2][0] is True
    assert plan[2][0] == [False, True, False, False, False, True]
    assert stopped_epoch == [8, -1, -1, 8, -1, -1]
    # t=3: l0.h0 (lambda_max 20, information) stays stopped; l0.h1 |1 - 1| / 2 = 0 -> stopped;
    #      l1.h1 Delta_1 = 0, Delta_3 == Delta_2 -> stopped; l0.h2 was nuisance and is now
    #      information (9 >= 0.35 * 20 = 7); l1.h2 is nuisance but the last candidate of layer 1
    assert plan[3][1] == [True, True, False, True, True, False]
    assert plan[3][2] == [True, True, True, False, False, False]
    assert plan[3][0] == [False, False, True, False, False, True]
    assert not any(finished for *_, finished in plan[:4])
    # t=4: the last two modules stop (|Delta_4 - Delta_3| = 0): every module is stopped, yet the
    # protecting strategy keeps each layer's largest lambda_max (l0.h0: 20, l1.h2: 3), stopped or not
    assert all(plan[4][1]) and plan[4][0] == [True, False, False, False, False, True]
    assert not p.finished() and p.wants(17) == {"mntk"}
    assert p.report()["evaluation_epochs"] == [2, 5, 8, 11, 14]


def _stop_everything(cfg: dict):
    """Two layers of three heads whose lambda_max never moves after t = 1: Eq. 6 stops all six at
    t = 2 (Delta_2 == Delta_1, ratio 0 < beta)."""
    part = heads(2, 3)
    p = build_policy(cfg, part, seed=0, steps_per_epoch=1)
    rows = [[5.0, 4.0, 1.0, 1.0, 2.0, 0.5], [6.0, 5.0, 2.0, 2.0, 3.0, 1.5], [6.0, 5.0, 2.0, 2.0, 3.0, 1.5]]
    for epoch in range(9):
        d = at(p, epoch, eigs(part, rows[(epoch - 2) // 3]) if epoch in (2, 5, 8) else None)
    return p, d


def test_protection_keeps_a_stopped_module_when_eq6_stops_a_whole_layer():
    """Appendix B.1: at least one head per layer keeps its gradient, even once Eq. 6 has stopped
    every module of the layer; so Algorithm 1, line 2 does not end the run."""
    p, d = _stop_everything(CFG)
    assert all(column(p, "stopped"))
    assert d.active.tolist() == [True, False, False, False, True, False]  # largest lambda_max per layer
    assert column(p, "protected") == [True, False, False, False, True, False]
    assert not p.finished()


def test_protect_stopped_false_is_the_other_reading_and_can_end_the_run():
    p, d = _stop_everything({**CFG, "protect_stopped": False})
    assert d.active.tolist() == [False] * 6 and p.finished()
    q, d = _stop_everything({**CFG, "protect": False})
    assert d.active.tolist() == [False] * 6 and q.finished()


def test_thresholds_per_kind_for_heads_and_experts():
    part = Partition(
        (
            Module("l0.h0", "head", 0, 0, (ParamSlice("q", 0, 0, 2),)),
            Module("l0.h1", "head", 0, 1, (ParamSlice("q", 0, 2, 4),)),
            Module("l0.e0", "expert", 0, 0, (ParamSlice("e0.wi"),)),
            Module("l0.e1", "expert", 0, 1, (ParamSlice("e1.wi"),)),
        )
    )
    p = build_policy({"name": "mat", "alpha": {"head": 0.1, "expert": 0.2}, "start_epoch": 0}, part, seed=0, steps_per_epoch=1)
    values = {
        "l0.h0": torch.tensor([8.0, 1.0, 0.0]),
        "l0.h1": torch.tensor([2.0, 0.5, 0.1]),
        "l0.e0": torch.tensor([100.0, 10.0, 5.0]),
        "l0.e1": torch.tensor([20.0, 6.0, 4.0]),
    }
    d = at(p, 0, values)
    # heads: 0 + 0.1 * (8 - 0) = 0.8; experts: 4 + 0.2 * (100 - 4) = 23.2 (one pooled threshold would be 10)
    assert p.report()["thresholds"] == {"head": pytest.approx(0.8), "expert": pytest.approx(23.2)}
    assert d.active.tolist() == [True, True, True, False]
    assert column(p, "information") == [True, True, True, False]


def test_measurement_errors():
    part = heads(1, 3)
    p = build_policy({"name": "mat", "start_epoch": 0}, part, seed=0, steps_per_epoch=1)
    good = eigs(part, [3, 2, 1])
    with pytest.raises(ValueError, match="no mNTK eigenvalues for module 'l0.h2'"):
        p.observe(0, "mntk", {k: v for k, v in good.items() if k != "l0.h2"})
    with pytest.raises(ValueError, match="'l9.h0', which is not a module"):
        p.observe(0, "mntk", {**good, "l9.h0": torch.tensor([1.0])})
    with pytest.raises(ValueError, match="not finite"):
        p.observe(0, "mntk", {**good, "l0.h1": torch.tensor([float("nan")])})
    with pytest.raises(ValueError, match="only 'mntk'"):
        p.observe(0, "snip", torch.ones(3))
    p.observe(0, "mntk", good)
    assert p.wants(0) == set()  # a resumed trainer does not measure the same epoch twice
    with pytest.raises(ValueError, match="no mNTK was asked for"):
        p.observe(0, "mntk", good)


def _measurement(part: Partition, epoch: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(epoch)
    out = {}
    for name in part.names:
        e = torch.rand(4, generator=g).sort(descending=True).values
        out[name] = e * (1 + 3 * torch.rand(1, generator=g))
    return out


@pytest.mark.parametrize("method", ["mat", "mat_prune"])
def test_resume_from_state_dict_makes_the_same_decisions(method):
    part = heads(3, 4)
    cfg = {"name": method, "alpha": 0.3, "beta": 0.5, "start_epoch": 1, "interval": 2}
    if method == "mat_prune":
        cfg.update(prune_epoch=4, prune_ratio=0.5)
    spe, epochs = 3, 16

    def run(policy, first_epoch, stop_after=None):
        decisions = []
        for epoch in range(first_epoch, epochs):
            if "mntk" in policy.wants(epoch):
                policy.observe(epoch, "mntk", _measurement(part, epoch))
            policy.start_epoch(epoch)
            for step in range(epoch * spe, (epoch + 1) * spe):
                decisions.append(policy.decide(step))
                if stop_after == step:
                    return decisions
        return decisions

    reference = build_policy(cfg, part, seed=4, steps_per_epoch=spe)
    straight = run(reference, 0)
    first = build_policy(cfg, part, seed=4, steps_per_epoch=spe)
    head = run(first, 0, stop_after=5 * spe + 1)  # stop in the middle of epoch 5
    resumed = build_policy(cfg, part, seed=4, steps_per_epoch=spe)
    resumed.load_state_dict(roundtrip(first.state_dict()))
    tail = [resumed.decide(5 * spe + 2)] + run(resumed, 6)
    both = head + tail
    assert len(both) == len(straight)
    for a, b in zip(straight, both):
        assert torch.equal(a.active, b.active) and torch.equal(a.lr_scale, b.lr_scale)
        assert (a.pruned is None) == (b.pruned is None) and (a.pruned is None or torch.equal(a.pruned, b.pruned))
    assert json.dumps(resumed.report()) == json.dumps(reference.report())  # same bookkeeping, plain values
    assert len({tuple(d.active.tolist()) for d in straight}) > 2  # the plan really changed over time
    assert any(row["stopped"] for row in resumed.report()["modules"])


def test_mat_prune_prunes_lowest_lambda_max_and_excludes_them_from_eq4():
    part = heads(2, 4)
    cfg = {"name": "mat_prune", "alpha": 0.2, "beta": 1.0e-3, "start_epoch": 1, "interval": 2,
           "prune_ratio": 0.5, "prune_epoch": 2}
    p = build_policy(cfg, part, seed=0, steps_per_epoch=1)
    assert [e for e in range(6) if p.wants(e)] == [1, 2, 3, 5]
    at(p, 0)
    at(p, 1, eigs(part, [5, 5, 5, 5, 5, 5, 5, 5]))
    lmax = [10.0, 20.0, 30.0, 40.0, 0.5, 0.6, 0.7, 0.8]
    values = {
        name: torch.tensor([v, v / 2, 0.0 if i in (0, 4, 5, 6) else (0.3 if i == 7 else 1.0)])
        for i, (name, v) in enumerate(zip(part.names, lmax))
    }
    d = at(p, 2, values)
    # the four lowest lambda_max are all of layer 1; protection keeps l1.h3 and takes l0.h0 instead
    assert d.pruned.tolist() == [True, False, False, False, True, True, True, False]
    # Eq. 4 over the survivors only: min 0.3 (l1.h3), max 40 -> 0.3 + 0.2 * 39.7 (with pruned: 8.0)
    assert p.report()["thresholds"]["head"] == pytest.approx(0.3 + 0.2 * 39.7)
    assert d.active.tolist() == [False, True, True, True, False, False, False, True]  # l1.h3 protected
    # the next evaluation: eigenvalues of pruned modules are ignored (or may be left out)
    later = {k: v for k, v in eigs(part, [1000, 20, 30, 40, 1000, 1000, 1000, 0.8], rest=(0.3,)).items()}
    d = at(p, 3, later)
    assert p.report()["thresholds"]["head"] == pytest.approx(0.3 + 0.2 * (40 - 0.3))
    assert not (d.active & d.pruned).any() and d.pruned.sum() == 4
    d = at(p, 4)
    d = at(p, 5, {k: v for k, v in later.items() if k in ("l0.h1", "l0.h2", "l0.h3", "l1.h3")})
    assert not (d.active & d.pruned).any()
