"""Segmented mNTK passes (mat.ntk_stages): a model's stages compose to its forward, each pass runs
only its own stages (nothing below its lowest owned layer, nothing from the next pass up; every
stage once over all passes), the Grams
equal the single pass's, and the cached boundaries stay within one hidden state per pass (plus
two boundary gradients)."""

from __future__ import annotations

import pytest
import torch

from mat import ntk
from mat.ntk_stages import Stage, context_of, plan_segments, stages_of

S, T = 6, 11
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def setup(micro_model):
    def make(arch):
        model, x, part = micro_model(arch, S, T)
        return model.eval(), x, part

    return make


def _stage_of(stages, name: str) -> int:
    layer = name.rpartition(".")[0]
    return next(k for k, st in enumerate(stages) if any(layer == p or layer.startswith(p + ".") for p in st.modules))


def _one_layer_groups(model, part) -> list[list[str]]:
    """One pass per layer (the module holding a parameter), in forward order."""
    owned = set(part.param_names)
    groups: dict[str, list[str]] = {}
    for n, _ in model.named_parameters():
        if n in owned:
            groups.setdefault(n.rpartition(".")[0], []).append(n)
    return list(groups.values())


@pytest.mark.parametrize("arch", ["bert", "switch", "vgg16"])
def test_stages_compose_to_the_forward(arch, setup):
    model, x, _ = setup(arch)
    h, ctx = x, context_of(model, x)
    for st in stages_of(model):
        h = st.run(h, ctx)
    assert torch.equal(h, model(x))


@pytest.mark.parametrize("arch", ["bert", "switch", "vgg16"])
def test_each_pass_runs_only_its_own_stages(arch, setup):
    model, x, part = setup(arch)
    stages = stages_of(model)
    groups = _one_layer_groups(model, part)
    assert len(groups) >= 4
    # every stage's modules, hooked: which stages run with autograd on (the passes themselves; the
    # boundary-caching forward and the output-layer probe run without) and on how many samples
    log: list[tuple[int, int]] = []
    mods = dict(model.named_modules())
    hooks = [
        mods[p].register_forward_hook(lambda m, a, y, k=k: log.append((k, a[0].shape[0])) if torch.is_grad_enabled() else None)
        for k, st in enumerate(stages) for p in st.modules
    ]
    ran: list[dict[int, int]] = []
    try:
        for _ in ntk.pass_gradients(model, x, groups, chunk_size=4):
            seen: dict[int, int] = {}
            for k, b in log:
                seen[k] = seen.get(k, 0) + b
            ran.append(seen)
            log.clear()
    finally:
        for h in hooks:
            h.remove()
    los = [min(_stage_of(stages, n) for n in g) for g in groups]
    n = len(stages)
    for j, seen in zip(reversed(range(len(groups))), ran):  # the passes come top-down
        end = n - 1 if j + 1 == len(groups) else los[j + 1] - 1  # up to the next pass's first stage
        assert set(seen) == set(range(los[j], end + 1)), (j, groups[j])
        # on S samples once (a stage with several modules, Switch's final norm + LM head, logs each)
        assert all(b == S * len(stages[k].modules) for k, b in seen.items())
    # every stage from the lowest owned one up runs once over all passes, as in the single pass
    runs = [k for seen in ran for k in seen]
    assert sorted(runs) == list(range(los[0], n))


def test_a_model_without_stages_takes_the_full_path_with_the_same_grams(setup):
    model, x, part = setup("bert")
    groups = _one_layer_groups(model, part)
    spans = ntk._spans(part)

    def grams():
        g = torch.zeros(len(part), S, S, dtype=torch.float64)
        for names, grads, _ in ntk.pass_gradients(model, x, groups, chunk_size=4):
            for name in names:
                ntk._add_grams(g, grads.pop(name), *spans[name])
        return g

    held: dict[str, int] = {}
    segmented = grams()
    calls = []
    hook = model.net.bert.embeddings.register_forward_hook(lambda m, a, y: calls.append(a))
    try:
        for _ in ntk.pass_gradients(model, x, groups, chunk_size=4, held=held):
            pass
        assert len(calls) == 1 + 2  # the one-sample probe, then the caching forward of 2 chunks
        calls.clear()
        model.ntk_stages = None  # no protocol: every pass runs the whole model
        full = grams()
        assert len(calls) == 1 + len(groups) * 2
    finally:
        hook.remove()
        del model.ntk_stages
    assert held["boundary_bytes"] > 0
    assert ((segmented - full).abs().max() / full.abs().max()).item() <= 1e-6


@pytest.mark.parametrize("arch", ["bert", "switch"])
def test_cached_boundaries_hold_at_most_one_hidden_state_per_pass(arch, setup):
    model, x, part = setup(arch)
    groups = _one_layer_groups(model, part)
    held: dict[str, int] = {}
    for _ in ntk.pass_gradients(model, x, groups, chunk_size=4, held=held):
        pass
    hidden = S * T * model.config.d_model * 4 if arch == "switch" else S * T * model.config.hidden_size * 4
    starts = {min(_stage_of(stages_of(model), n) for n in g) for g in groups}
    # each pass's input boundary, plus the gradient a pass starts from and the one it leaves below
    assert 0 < held["boundary_bytes"] <= (len(starts) + 2) * hidden


def test_passes_out_of_forward_order_are_not_segmented(setup):
    model, _, part = setup("bert")
    stages = stages_of(model)
    groups = _one_layer_groups(model, part)
    owners = {n: [n.rpartition(".")[0]] for g in groups for n in g}
    segs = plan_segments(stages, groups, owners)
    assert segs is not None and not segs[0].below and segs[-1].end == len(stages) - 1
    running = [sg for sg in segs if sg.runs]
    assert all(lower.end + 1 == upper.lo for lower, upper in zip(running, running[1:]))  # they tile the chain
    # a stage split between passes (BERT's attention: q, k, v, o one pass each) runs in the top one,
    # which keeps the others' inputs and output gradients
    split = [sg for sg in running if sg.deferred]
    assert split and all(all(p.startswith(stages[sg.lo].modules[0]) for p in sg.deferred) for sg in split)
    assert plan_segments(stages, groups[::-1], owners) is None
    outside = [Stage(("nowhere",), lambda h, c: h)]
    assert plan_segments(outside, groups, owners) is None
