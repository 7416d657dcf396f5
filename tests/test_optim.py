"""Masked optimizers: equal to torch.optim when everything is active, bitwise frozen otherwise."""

from __future__ import annotations

import io

import pytest
import torch

from mat.optim import SGD, AdamW, Mask, build_optimizer, build_schedule, decision_masks, validate_optim_config
from mat.partition import Module, ParamSlice, Partition
from mat.policies import build_policy
from mat.policies.base import Decision


def two_module_partition() -> Partition:
    """Module A = rows 0-1 of w (+ bias[0:2]), module B = rows 2-3 of w (+ bias[2:4]); `free` is unowned."""
    return Partition(
        (
            Module("A", "head", 0, 0, (ParamSlice("w", 0, 0, 2), ParamSlice("b", 0, 0, 2))),
            Module("B", "head", 0, 1, (ParamSlice("w", 0, 2, 4), ParamSlice("b", 0, 2, 4))),
        )
    )


def make_params(seed: int = 0) -> dict[str, torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return {
        "w": torch.nn.Parameter(torch.randn(4, 3, generator=g)),
        "b": torch.nn.Parameter(torch.randn(4, generator=g)),
        "free": torch.nn.Parameter(torch.randn(2, 2, generator=g)),
    }


def grads_for(step: int, params) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    return {n: torch.randn(p.shape, generator=g) for n, p in params.items()}


ADAM_SETTINGS = [
    dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.1),
    dict(lr=2e-4, betas=(0.0, 0.0), eps=1e-6, weight_decay=0.0),  # the paper's BERT
    dict(lr=1e-3, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.01),  # Switch
]
SGD_SETTINGS = [
    dict(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=False),
    dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True),
    dict(lr=0.1, momentum=0.0, weight_decay=0.01, nesterov=False),
]


def _pair(kind: str, settings: dict):
    ours_p, ref_p = make_params(), make_params()
    if kind == "adamw":
        return ours_p, AdamW(list(ours_p.items()), **settings), ref_p, torch.optim.AdamW(list(ref_p.values()), **settings)
    return ours_p, SGD(list(ours_p.items()), **settings), ref_p, torch.optim.SGD(list(ref_p.values()), **settings)


@pytest.mark.parametrize("kind,settings", [("adamw", s) for s in ADAM_SETTINGS] + [("sgd", s) for s in SGD_SETTINGS])
@pytest.mark.parametrize("with_masks", [False, True])
def test_all_active_equals_torch(kind, settings, with_masks):
    ours_p, ours, ref_p, ref = _pair(kind, settings)
    part = two_module_partition()
    for step in range(5):
        g = grads_for(step, ours_p)
        for n in ours_p:
            ours_p[n].grad = g[n].clone()
            ref_p[n].grad = g[n].clone()
        masks = decision_masks(Decision.everyone(2), part, ours_p) if with_masks else None
        ours.step(masks)
        ref.step()
    for n in ours_p:
        assert torch.allclose(ours_p[n], ref_p[n], atol=1e-6, rtol=0), n
        assert not torch.equal(ours_p[n], make_params()[n])  # it did move


@pytest.mark.parametrize("kind,settings", [("adamw", ADAM_SETTINGS[0]), ("adamw", ADAM_SETTINGS[1]),
                                           ("sgd", SGD_SETTINGS[0]), ("sgd", SGD_SETTINGS[1])])
def test_frozen_means_frozen(kind, settings):
    """A alternates frozen/active, B is always active. Frozen steps leave A's slices and optimizer
    state bitwise unchanged; in the end A equals a reference optimizer that only saw A's active
    steps, and B (and the unowned parameter) one that saw every step."""
    part = two_module_partition()
    params = make_params()
    opt = AdamW(params, **settings) if kind == "adamw" else SGD(params, **settings)
    init = make_params()
    ref_a = {n: torch.nn.Parameter(init[n][:2].clone()) for n in ("w", "b")}
    ref_b = {n: torch.nn.Parameter(init[n][2:].clone()) for n in ("w", "b")}
    ref_free = torch.nn.Parameter(init["free"].clone())
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.SGD
    opt_a, opt_b, opt_free = cls(list(ref_a.values()), **settings), cls(list(ref_b.values()), **settings), cls([ref_free], **settings)

    a_active = [False, True, False, False, True, True, False, True]
    for step, act in enumerate(a_active):
        g = grads_for(step, params)
        for n, p in params.items():
            p.grad = g[n].clone()
        before_p = {n: p.detach().clone() for n, p in params.items()}
        before_s = {n: {k: v.clone() for k, v in opt.state[p].items()} for n, p in params.items()}
        opt.step(decision_masks(Decision(torch.tensor([act, True]), torch.ones(2)), part, params))

        for n in ("w", "b"):
            if not act:
                assert torch.equal(params[n][:2], before_p[n][:2]), f"A's slice of {n} changed while frozen"
                for k, v in before_s[n].items():
                    assert torch.equal(opt.state[params[n]][k][:2], v[:2]), f"A's {k} of {n} changed while frozen"
            assert not torch.equal(params[n][2:], before_p[n][2:])  # B always moves
            ref_b[n].grad = g[n][2:].clone()
            if act:
                ref_a[n].grad = g[n][:2].clone()
        ref_free.grad = g["free"].clone()
        opt_b.step()
        opt_free.step()
        if act:
            opt_a.step()
    for n in ("w", "b"):
        assert torch.allclose(params[n][:2], ref_a[n], atol=1e-6, rtol=0)
        assert torch.allclose(params[n][2:], ref_b[n], atol=1e-6, rtol=0)
    assert torch.allclose(params["free"], ref_free, atol=1e-6, rtol=0)
    if kind == "adamw":  # per-element step counts: A was updated 4 times, B 8 times
        counts = opt.state[params["w"]]["step"]
        assert counts[:2].unique().tolist() == [sum(a_active)] and counts[2:].unique().tolist() == [len(a_active)]


def test_frozen_survives_nan_gradient_and_huge_weight_decay():
    """A frozen element keeps its bits whatever garbage its gradient holds."""
    part = two_module_partition()
    for opt_cls, kw in ((AdamW, dict(lr=1.0, weight_decay=0.5)), (SGD, dict(lr=1.0, momentum=0.9, weight_decay=0.5))):
        params = make_params()
        opt = opt_cls(params, **kw)
        for n in ("w", "b"):
            params[n].grad = torch.full_like(params[n], float("nan"))
            params[n].grad[2:] = 1.0  # module B: an ordinary gradient; module A (frozen): NaN
        params["free"].grad = torch.ones(2, 2)
        before = params["w"].detach().clone()
        opt.step(decision_masks(Decision(torch.tensor([False, True]), torch.ones(2)), part, params))
        assert torch.equal(params["w"][:2], before[:2])
        assert torch.isfinite(params["w"]).all()


def test_lr_scale_multiplies_the_step():
    part = two_module_partition()
    params = make_params()
    opt = SGD(params, lr=0.1)
    init = {n: p.detach().clone() for n, p in params.items()}
    for p in params.values():
        p.grad = torch.ones_like(p)
    opt.step(decision_masks(Decision(torch.ones(2, dtype=torch.bool), torch.tensor([3.0, 0.5])), part, params))
    assert torch.allclose(params["w"][:2], init["w"][:2] - 0.3)
    assert torch.allclose(params["w"][2:], init["w"][2:] - 0.05)
    assert torch.allclose(params["free"], init["free"] - 0.1)


def _one_param_per_module(n_modules: int, width: int = 2):
    """n modules, module i = row i of one parameter `w`; all in layer 0 so multirate splits them."""
    mods = tuple(Module(f"m{i}", "head", 0, i, (ParamSlice("w", 0, i, i + 1),)) for i in range(n_modules))
    return Partition(mods)


def test_multirate_paper_against_hand_computation():
    """SGD without momentum, loss 0.5 ||w - c||^2 (gradient w - c): fast rows take
    w <- w - lr (w - c) every step; slow rows take w <- w - k lr (w - c) only at steps with
    step % k == k - 1, and are bitwise unchanged otherwise."""
    k, lr, steps = 5, 0.05, 12
    part = _one_param_per_module(4)
    policy = build_policy({"name": "multirate", "k": k}, part, seed=3, steps_per_epoch=100)
    policy.start_epoch(0)
    w = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.0, 2.0], [4.0, 0.0]]))
    c = torch.tensor([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    opt = SGD([("w", w)], lr=lr)
    fast = [bool(x) for x in policy.fast]
    assert sum(fast) == 2
    hand = [[float(x) for x in row] for row in w.detach()]
    for step in range(steps):
        before = w.detach().clone()
        w.grad = (w.detach() - c).clone()
        opt.step(decision_masks(policy.decide(step), part, {"w": w}))
        for i in range(4):
            if fast[i]:
                hand[i] = [h - lr * (h - float(ci)) for h, ci in zip(hand[i], c[i])]
            elif step % k == k - 1:
                hand[i] = [h - k * lr * (h - float(ci)) for h, ci in zip(hand[i], c[i])]
            else:
                assert torch.equal(w[i], before[i]), f"slow row {i} moved at step {step}"
    assert torch.allclose(w.detach(), torch.tensor(hand), atol=1e-6)
    moved_slow = [i for i in range(4) if not fast[i]]
    assert all(not torch.equal(w[i], torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.0, 2.0], [4.0, 0.0]])[i]) for i in moved_slow)


def test_multirate_drift_with_momentum_sgd():
    """Drift: the slow rows' momentum buffer absorbs a gradient only every k steps, and the slow
    rows move every step by (lr / k) * buffer; before the first refresh they do not move."""
    k, lr, mu = 3, 0.1, 0.9
    part = _one_param_per_module(2)
    policy = build_policy({"name": "multirate", "k": k, "variant": "drift"}, part, seed=0, steps_per_epoch=100)
    policy.start_epoch(0)
    slow = [i for i in range(2) if not bool(policy.fast[i])][0]
    fast = 1 - slow
    w = torch.nn.Parameter(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    opt = SGD([("w", w)], lr=lr, momentum=mu)
    hand_w = [float(x) for x in w.detach()[slow]]
    hand_buf = [0.0, 0.0]
    fast_w, fast_buf = [float(x) for x in w.detach()[fast]], [0.0, 0.0]
    for step in range(8):
        g = torch.tensor([[0.5, -1.0], [2.0, 1.0]]) * (step + 1)
        w.grad = g.clone()
        buf_before = opt.state[w]["momentum_buffer"][slow].clone() if opt.state[w] else torch.zeros(2)
        opt.step(decision_masks(policy.decide(step), part, {"w": w}))
        if step % k == k - 1:
            hand_buf = [mu * b + float(gi) for b, gi in zip(hand_buf, g[slow])]
        else:
            assert torch.equal(opt.state[w]["momentum_buffer"][slow], buf_before)
        hand_w = [x - lr / k * b for x, b in zip(hand_w, hand_buf)]
        fast_buf = [mu * b + float(gi) for b, gi in zip(fast_buf, g[fast])]
        fast_w = [x - lr * b for x, b in zip(fast_w, fast_buf)]
        if step < k - 1:
            assert w[slow].tolist() == ([1.0, 2.0] if slow == 0 else [3.0, 4.0])
    assert torch.allclose(w[slow], torch.tensor(hand_w), atol=1e-5)
    assert torch.allclose(w[fast], torch.tensor(fast_w), atol=1e-5)


def test_drift_adamw_moves_on_stored_moments_only():
    part = _one_param_per_module(2)
    w = torch.nn.Parameter(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    opt = AdamW([("w", w)], lr=0.1)
    refresh = Mask(torch.tensor([[True]]), torch.tensor([[1.0]]), torch.tensor([[True]]))
    w.grad = torch.ones(2, 2)
    opt.step({"w": refresh})
    state = {k: v.clone() for k, v in opt.state[w].items()}
    before = w.detach().clone()
    w.grad = torch.full((2, 2), 100.0)
    drift = decision_masks(
        Decision(torch.ones(2, dtype=torch.bool), torch.tensor([1.0, 0.5]), use_grad=torch.tensor([False, False])),
        part, {"w": w},
    )
    opt.step(drift)
    for key, v in state.items():
        assert torch.equal(opt.state[w][key], v), key
    # m = 0.1, v = 0.001 after one step of gradient 1: m_hat / sqrt(v_hat) = 1, so the move is lr * scale
    assert torch.allclose(before - w.detach(), torch.tensor([[0.1, 0.1], [0.05, 0.05]]), atol=1e-5)


def test_drift_without_momentum_is_refused_and_fresh_state_does_not_move():
    part = _one_param_per_module(2)
    w = torch.nn.Parameter(torch.ones(2, 2))
    w.grad = torch.ones(2, 2)
    drift = decision_masks(Decision(torch.ones(2, dtype=torch.bool), torch.ones(2), use_grad=torch.zeros(2, dtype=torch.bool)), part, {"w": w})
    with pytest.raises(ValueError, match="momentum > 0"):
        SGD([("w", w)], lr=0.1).step(drift)
    opt = AdamW([("w", w)], lr=0.1, betas=(0.0, 0.0))
    opt.step(drift)  # never absorbed a gradient: no direction, no movement, no division by zero
    assert torch.equal(w.detach(), torch.ones(2, 2))


def test_decision_masks_shapes_fill_and_pruned():
    part = two_module_partition()
    params = make_params()
    d = Decision(torch.tensor([True, True]), torch.tensor([2.0, 1.0]), use_grad=torch.tensor([False, True]),
                 pruned=torch.tensor([False, True]))
    masks = decision_masks(d, part, params)
    assert set(masks) == {"w", "b"}  # `free` is unowned: updated fully, no entry
    active, scale, use_grad = masks["w"]
    assert torch.broadcast_shapes(active.shape, params["w"].shape) == params["w"].shape
    assert active.expand(4, 3)[:, 0].tolist() == [True, True, False, False]  # pruned B is never active
    assert scale.expand(4, 3)[:, 0].tolist() == [2.0, 2.0, 1.0, 1.0]
    assert use_grad.expand(4, 3)[:, 0].tolist() == [False, False, True, True]
    with pytest.raises(KeyError, match="'b'"):
        decision_masks(d, part, {"w": params["w"]})


def test_optimizer_rejects_bad_input():
    params = make_params()
    with pytest.raises(TypeError, match="named"):
        AdamW(list(params.values()), lr=1e-3)
    opt = AdamW(params, lr=1e-3)
    for p in params.values():
        p.grad = torch.ones_like(p)
    with pytest.raises(KeyError, match="nope"):
        opt.step({"nope": Mask(torch.tensor(True), torch.tensor(1.0), torch.tensor(True))})
    with pytest.raises(ValueError, match="does not broadcast"):
        opt.step({"w": Mask(torch.ones(5, 1, dtype=torch.bool), torch.tensor(1.0), torch.tensor(True))})
    with pytest.raises(ValueError, match="bool"):
        opt.step({"w": (torch.ones(4, 1), torch.tensor(1.0), torch.tensor(True))})


def test_state_dict_resume_is_bitwise():
    """Stop after 3 masked steps, save, load into a fresh optimizer, continue: same bits as never stopping."""
    part = two_module_partition()
    plan = [[True, False], [False, True], [True, True], [False, True], [True, False], [True, True]]

    def run(stop_at: int | None):
        params = make_params()
        opt = AdamW(params, lr=1e-2, weight_decay=0.1)
        for step, act in enumerate(plan):
            if step == stop_at:
                buf = io.BytesIO()
                torch.save({"opt": opt.state_dict(), "params": {n: p.detach() for n, p in params.items()}}, buf)
                buf.seek(0)
                saved = torch.load(buf, weights_only=True)
                params = {n: torch.nn.Parameter(t.clone()) for n, t in saved["params"].items()}
                opt = AdamW(params, lr=1e-2, weight_decay=0.1)
                opt.load_state_dict(saved["opt"])
            g = grads_for(step, params)
            for n, p in params.items():
                p.grad = g[n]
            opt.step(decision_masks(Decision(torch.tensor(act), torch.ones(2)), part, params))
        return params, opt

    (p1, o1), (p2, o2) = run(None), run(3)
    for n in p1:
        assert torch.equal(p1[n], p2[n])
        assert torch.equal(o1.state[p1[n]]["step"], o2.state[p2[n]]["step"])
        assert o2.state[p2[n]]["step"].dtype == torch.int32


# ----------------------------------------------------------------------------- config and schedules
def _lrs(cfg, total, steps):
    """The lr of each step, stepping as the trainer does: masked optimizer step, then the scheduler."""
    params = make_params()
    opt = build_optimizer(cfg, params)
    sched = build_schedule(cfg, opt, total)
    out = []
    for step in range(steps):
        out.append(opt.param_groups[0]["lr"])
        for p in params.values():
            p.grad = torch.zeros_like(p)
        opt.step(decision_masks(Decision(torch.tensor([step % 2 == 0, True]), torch.ones(2)), two_module_partition(), params))
        sched.step()
    return out


def test_schedules():
    lin = _lrs({"name": "adamw", "lr": 1.0, "schedule": "linear"}, 4, 4)
    assert lin == pytest.approx([1.0, 0.75, 0.5, 0.25])
    warm = _lrs({"name": "adamw", "lr": 2.0, "schedule": "cosine", "warmup_steps": 2}, 6, 6)
    assert warm == pytest.approx([0.0, 1.0, 2.0, 2.0 * 0.5 * (1 + 0.7071067811865476), 1.0, 2.0 * 0.5 * (1 - 0.7071067811865476)])
    step = _lrs({"name": "sgd", "lr": 0.1, "momentum": 0.9, "schedule": "step", "milestones": [0.5, 0.75], "gamma": 0.1}, 8, 8)
    assert step == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)
    assert _lrs({"name": "sgd", "lr": 0.3}, 3, 3) == pytest.approx([0.3] * 3)


def test_scheduler_state_round_trip():
    cfg = {"name": "adamw", "lr": 1.0, "schedule": "linear", "warmup_steps": 2}
    params = make_params()
    opt = build_optimizer(cfg, params)
    sched = build_schedule(cfg, opt, 10)
    for _ in range(4):
        opt.step()
        sched.step()
    opt2 = build_optimizer(cfg, make_params())
    sched2 = build_schedule(cfg, opt2, 10)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == sched.get_last_lr() == pytest.approx([1.0 - 2 / 8])


def test_build_optimizer_reads_the_config():
    opt = build_optimizer({"name": "adamw", "lr": 2.0e-4, "betas": [0.0, 0.0], "eps": 1.0e-6}, make_params())
    assert isinstance(opt, AdamW)
    g = opt.param_groups[0]
    assert (g["lr"], g["betas"], g["eps"], g["weight_decay"]) == (2.0e-4, (0.0, 0.0), 1.0e-6, 0.0)
    opt = build_optimizer({"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}, make_params())
    assert isinstance(opt, SGD) and opt.param_groups[0]["nesterov"] is True


@pytest.mark.parametrize(
    "cfg,key",
    [
        ({"name": "adam", "lr": 1e-3}, "optim.name"),
        ({"name": "adamw"}, "optim.lr"),
        ({"name": "adamw", "lr": "1e-3"}, "optim.lr"),
        ({"name": "adamw", "lr": -1.0}, "optim.lr"),
        ({"name": "adamw", "lr": 1e-3, "betas": [0.9]}, "optim.betas"),
        ({"name": "adamw", "lr": 1e-3, "momentum": 0.9}, "optim.momentum"),
        ({"name": "sgd", "lr": 0.1, "eps": 1e-8}, "optim.eps"),
        ({"name": "sgd", "lr": 0.1, "nesterov": True}, "optim.nesterov"),
        ({"name": "sgd", "lr": 0.1, "schedule": "exponential"}, "optim.schedule"),
        ({"name": "sgd", "lr": 0.1, "schedule": "linear", "milestones": [0.5]}, "optim.milestones"),
        ({"name": "sgd", "lr": 0.1, "schedule": "step", "milestones": [0.75, 0.5]}, "optim.milestones"),
        ({"name": "sgd", "lr": 0.1, "warmup_steps": 1.5}, "optim.warmup_steps"),
        ({"name": "sgd", "lr": 0.1, "lr_decay": 0.5}, "optim.lr_decay"),
    ],
)
def test_optim_config_errors_name_the_key(cfg, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        validate_optim_config(cfg)


def test_yaml_string_number_gets_a_hint():
    with pytest.raises(ValueError, match="write 1.0e-3"):
        validate_optim_config({"name": "adamw", "lr": "1e-3"})


def test_warmup_longer_than_training_is_refused():
    cfg = {"name": "adamw", "lr": 1e-3, "schedule": "linear", "warmup_steps": 10}
    with pytest.raises(ValueError, match="optim.warmup_steps"):
        build_schedule(cfg, build_optimizer(cfg, make_params()), 10)
