"""Measured FLOPs: forward counts against analytic formulas, the CPU sdpa kernel counted, the meter's
columns, its cache (the counter runs once per (shape, active set)), the mNTK count, the
"without embedding" definition, and checkpoint/resume."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

import mat.flops as flops
from mat.backward import install_partial_backward
from mat.flops import COLUMNS, MeasuredComputeMeter, count_step, flop_counter
from mat.models import build_model, build_partition
from mat.partition import Partition
from mat.policies.base import Decision

VOCAB = 53


def _bert(**cfg):
    torch.manual_seed(0)
    return build_model({"arch": "bert", "size": "micro", "vocab_size": VOCAB, **cfg})


def _tokens(b=2, t=12, seed=0):
    return torch.randint(0, VOCAB, (b, t), generator=torch.Generator().manual_seed(seed))


def _bert_forward_analytic(config, b: int, t: int) -> int:
    """2 * tokens * (parameters of every matmul) + per layer 4*B*h*L^2*d for QK^T and AV."""
    h, inter, v, layers = config.hidden_size, config.intermediate_size, config.vocab_size, config.num_hidden_layers
    heads, d = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    matmul_params = layers * (4 * h * h + 2 * h * inter) + h * h + h * v  # blocks, MLM transform, decoder
    return 2 * b * t * matmul_params + layers * 4 * b * heads * t * t * d


# ------------------------------------------------------------------------------ forward counts
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_bert_forward_flops_match_analytic(impl):
    model = _bert(size="tiny", attn_implementation=impl)
    b, t = 2, 16
    c = count_step(model, _tokens(b, t))
    assert c["fwd"] == _bert_forward_analytic(model.config, b, t)


def test_cpu_sdpa_kernel_is_counted():
    b, h, lq, d = 2, 3, 10, 8
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(b, h, lq, d, generator=g, requires_grad=True) for _ in range(3))
    with flop_counter() as c:
        out = F.scaled_dot_product_attention(q, k, v)
        fwd = c.get_total_flops()
        out.sum().backward()
    ops = {str(op) for op in c.get_flop_counts()["Global"]}
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in ops  # the kernel that torch leaves at 0
    assert fwd == 4 * b * h * lq * lq * d
    assert c.get_total_flops() - fwd == 10 * b * h * lq * lq * d  # QK^T recomputed, then dV, dP, dQ, dK
    with torch.utils.flop_counter.FlopCounterMode(display=False) as plain:
        F.scaled_dot_product_attention(q, k, v)
    assert plain.get_total_flops() == 0  # what torch alone would report


def test_vgg16_forward_flops_per_image():
    torch.manual_seed(0)
    model = build_model({"arch": "vgg16"})  # full width, 14.7 M parameters
    with torch.no_grad():
        fwd, emb = MeasuredComputeMeter(model, build_partition(model, ["filter"])).forward_flops(torch.zeros(1, 3, 32, 32))
    assert (fwd, emb) == (626_403_328, 0)


# ------------------------------------------------------------------------------ the meter
def _meter_with_pb(model, kinds):
    part = build_partition(model, kinds)
    pb = install_partial_backward(model, part)
    return MeasuredComputeMeter(model, part, partial_backward=pb), part, pb


def test_meter_columns_and_partial_backward_saving():
    model = _bert(size="tiny")
    meter, part, pb = _meter_with_pb(model, ["head"])
    x = _tokens(2, 16)
    everyone = Decision.everyone(len(part))
    half = Decision.everyone(len(part))
    half.active[::2] = False  # half the heads of every layer
    meter.step(x, everyone)
    full = meter.totals()
    meter.step(x, half)
    both = meter.totals()
    fwd = _bert_forward_analytic(model.config, 2, 16)
    assert full["flops_fwd"] == fwd and both["flops_fwd"] == 2 * fwd
    c = model.config
    saved = c.num_hidden_layers * 4 * (2 * 32 * (c.hidden_size // 2) * c.hidden_size)  # see test_backward
    assert both["flops_bwd"] - full["flops_bwd"] == full["flops_bwd"] - saved
    assert both["flops_total"] == both["flops_fwd"] + both["flops_bwd"] + both["flops_mntk"]
    assert both["flops_total_noemb"] == both["flops_total"]  # lookups count 0; the decoder stays
    assert both["flops_paper_dense"] == 3 * 2 * fwd  # DeepSpeed's estimator: blind to freezing
    # The paper's accounting applied to freezing: a frozen head's backward is left out entirely.
    # One head's forward: 4 projections' d of H rows/columns, plus its Q K^T and A V.
    b, t, h, heads = 2, 16, c.hidden_size, c.num_attention_heads
    d = h // heads
    head_fwd = 4 * 2 * b * t * d * h + 2 * b * t * t * 2 * d
    frozen = c.num_hidden_layers * (heads // 2) * head_fwd
    assert full["flops_paper_estimate"] == 3 * fwd
    assert both["flops_paper_estimate"] == 3 * fwd + fwd + 2 * (fwd - frozen)
    assert set(both) == set(COLUMNS)
    assert torch.equal(pb.active, torch.ones(len(part), dtype=torch.bool))  # counting restored the set


def test_meter_without_partial_backward_counts_full_backward():
    model = _bert()
    part = build_partition(model, ["head"])
    meter = MeasuredComputeMeter(model, part)
    x = _tokens()
    none = Decision(torch.zeros(len(part), dtype=torch.bool), torch.ones(len(part)))
    with torch.no_grad():  # a caller's no_grad does not hide the backward from the count
        meter.step(x, none)
    c = count_step(model, x)
    assert meter.totals()["flops_bwd"] == c["bwd"] > 0


def test_counting_changes_no_state():
    torch.manual_seed(0)
    model = build_model({"arch": "vgg16", "size": "micro"}).train()
    meter, part, _ = _meter_with_pb(model, ["filter"])
    x = torch.randn(2, 3, 32, 32)
    before = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    meter.step(x, Decision.everyone(len(part)))
    assert model.training
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # BatchNorm running statistics untouched
    assert all(p.grad is None for p in model.parameters())


def test_paper_estimate_leaves_out_frozen_filters_and_experts():
    """Every filter frozen: only the classifier's backward is left (forward + 2 x classifier);
    every expert of a Switch model frozen: 2 x the experts' FFN forward is left out."""
    torch.manual_seed(0)
    vgg = build_model({"arch": "vgg16", "size": "micro"})
    meter, part, _ = _meter_with_pb(vgg, ["filter"])
    x = torch.randn(2, 3, 32, 32)
    with flop_counter() as counter:
        vgg.eval()(x)
    per_module = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    convs = sum(v for k, v in per_module.items() if k.endswith(".conv"))
    fwd = per_module["Global"]
    assert sum(meter.module_forward(x)) == convs  # the filters of a conv share its FLOPs exactly
    meter.step(x, Decision(torch.zeros(len(part), dtype=torch.bool), torch.ones(len(part))))
    t = meter.totals()
    assert t["flops_paper_estimate"] == fwd + 2 * (fwd - convs) < t["flops_paper_dense"] == 3 * fwd

    switch = build_model({"arch": "switch", "size": "micro", "vocab_size": VOCAB})
    meter, part, _ = _meter_with_pb(switch, ["expert"])
    x = _tokens(2, 12)
    experts = sum(meter.module_forward(x))
    assert experts > 0
    none = Decision(torch.zeros(len(part), dtype=torch.bool), torch.ones(len(part)))
    meter.step(x, none)
    t = meter.totals()
    fwd = t["flops_fwd"]
    assert t["flops_paper_estimate"] == 3 * fwd - 2 * experts


class _SpyCounter:
    def __init__(self, monkeypatch):
        self.calls = 0
        real = flops.flop_counter

        def spy():
            self.calls += 1
            return real()

        monkeypatch.setattr(flops, "flop_counter", spy)


def test_cache_counts_once_per_shape_and_active_set(monkeypatch):
    model = _bert()
    meter, part, _ = _meter_with_pb(model, ["head"])
    spy = _SpyCounter(monkeypatch)
    a = Decision.everyone(len(part))
    b = Decision.everyone(len(part))
    b.active[0] = False
    x = _tokens(2, 12)
    meter.step(x, a)
    first = meter.totals()
    meter.step(_tokens(2, 12, seed=9), a)  # same shape, same set, other values
    assert spy.calls == 1
    assert meter.totals()["flops_bwd"] == 2 * first["flops_bwd"]
    meter.step(x, b)  # another active set
    assert spy.calls == 2
    meter.step(_tokens(3, 12), a)  # another shape
    assert spy.calls == 3
    meter.step(x, Decision(b.active.clone(), torch.full((len(part),), 0.5)))  # same set, other lr scales
    assert spy.calls == 3


def test_mntk_counts_the_actual_computation_once(monkeypatch):
    model = _bert().eval()
    meter, part, pb = _meter_with_pb(model, ["head"])
    pb.set_active(torch.zeros(len(part), dtype=torch.bool))  # frozen heads do not matter to the mNTK
    x = _tokens(4, 8)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def per_sample_grads():
        f = lambda p, xi: functional_call(model, p, (xi[None],)).sum()  # sum of logits (paper B.3)
        return vmap(grad(f), in_dims=(None, 0))(params, x)

    spy = _SpyCounter(monkeypatch)
    g1 = meter.mntk(x, per_sample_grads)
    once = meter.totals()["flops_mntk"]
    g2 = meter.mntk(x, per_sample_grads)
    assert spy.calls == 1 and meter.totals()["flops_mntk"] == 2 * once
    assert torch.equal(g1[part.param_names[0]], g2[part.param_names[0]])
    with pb.disabled():
        full = count_step(model, x)
    # Per-sample gradients of the summed logits cost one forward and one full backward of the batch.
    assert once == full["fwd"] + full["bwd"]
    meter.mntk(x)  # no callable: a minibatch gradient (SNIP), full backward whatever the active set
    assert meter.totals()["flops_mntk"] == 3 * once
    assert meter.totals()["flops_total"] == 3 * once  # no training steps yet
    before = spy.calls
    meter.mntk(_tokens(2, 8), per_sample_grads)  # another S: counted anew
    assert spy.calls == before + 1


def test_measurements_see_every_gradient():
    """A measurement (SNIP reads .grad) runs on the plain model even when every head is frozen."""
    model = _bert()
    meter, part, pb = _meter_with_pb(model, ["head"])
    pb.set_active(torch.zeros(len(part), dtype=torch.bool))
    x = _tokens()

    def snip_like():
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
        return {n: p.grad for n, p in model.named_parameters() if n in part.param_names}

    grads = meter.mntk(x, snip_like)
    assert all(g is not None and torch.count_nonzero(g) > 0 for g in grads.values())
    assert not any(p.requires_grad for n, p in model.named_parameters() if n in part.param_names)  # frozen again


def test_logging_measurements_are_counted_apart_from_the_method():
    """A measurement for the logs and figures goes to flops_logging and never into flops_total; the
    same measurement for the method is in flops_mntk and the total. One count serves both."""
    model = _bert()
    meter, _, _ = _meter_with_pb(model, ["head"])
    x = _tokens()
    forward = lambda: model(x)  # noqa: E731  (any measurement with FLOPs)
    meter.mntk(x, forward, key="k", purpose="logging")
    logged = meter.totals()
    assert logged["flops_logging"] > 0 and logged["flops_mntk"] == logged["flops_total"] == 0
    meter.mntk(x, forward, key="k")  # the method's: the cached count, now in the total
    both = meter.totals()
    assert both["flops_mntk"] == both["flops_total"] == both["flops_total_noemb"] == logged["flops_logging"]
    assert both["flops_logging"] == logged["flops_logging"]
    with pytest.raises(ValueError, match="purpose 'figures'; expected one of"):
        meter.mntk(x, lambda: None, purpose="figures")


class _Stem(nn.Linear):
    """A stand-in "embedding" that does arithmetic, to check what the noemb column subtracts."""


def test_noemb_excludes_exactly_the_embedding_modules():
    torch.manual_seed(0)
    model = nn.Sequential(_Stem(8, 16), nn.ReLU(), nn.Linear(16, 4))
    part = Partition(())  # no modules: only the embedding definition is under test
    meter = MeasuredComputeMeter(model, part, embedding_types=(_Stem,))
    meter.step(torch.randn(5, 8), Decision.everyone(0))
    t = meter.totals()
    stem = 2 * 5 * 8 * 16  # forward; its backward: the weight gradient (the input needs none)
    top = 2 * 5 * 16 * 4  # forward; its backward: weight and input gradients
    assert t["flops_total"] == stem + top + stem + 2 * top
    assert t["flops_total_noemb"] == top + 2 * top
    assert t["flops_paper_estimate"] == t["flops_paper_dense"] == 3 * top


def test_bert_embeddings_are_lookups_and_decoder_is_kept():
    model = _bert()
    meter = MeasuredComputeMeter(model, build_partition(model, ["head"]))
    names = flops.embedding_module_names(model)
    assert {n.rsplit(".", 1)[-1] for n in names} == {"word_embeddings", "position_embeddings", "token_type_embeddings"}
    fwd, emb = meter.forward_flops(_tokens())
    assert emb == 0 and fwd == _bert_forward_analytic(model.config, 2, 12)  # decoder's H x V matmul included


def test_state_dict_resume(monkeypatch):
    model = _bert()
    meter, part, _ = _meter_with_pb(model, ["head"])
    d = Decision.everyone(len(part))
    d.active[1] = False
    x = _tokens()
    meter.step(x, d)
    meter.mntk(x)
    state = copy.deepcopy(meter.state_dict())
    meter.step(x, d)
    want = meter.totals()
    resumed = MeasuredComputeMeter(model, part, partial_backward=meter.partial_backward)
    resumed.load_state_dict(state)
    spy = _SpyCounter(monkeypatch)
    resumed.step(x, d)
    assert resumed.totals() == want and spy.calls == 0  # the cache came back with the checkpoint
    with pytest.raises(KeyError, match="missing key 'sums'"):
        resumed.load_state_dict({"steps": {}, "measures": {}})
