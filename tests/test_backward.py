"""Partial backward: the forward is bitwise the plain model's, active-slice and input gradients
equal the plain model's, frozen slices get zero (or no) gradient, the skipped work really is not
done (FlopCounterMode sees exactly the analytic saving), and torch.func (the mNTK) is unaffected."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.func import functional_call, grad, vmap

from mat.backward import install_partial_backward
from mat.flops import flop_counter
from mat.models import build_model, build_partition

VOCAB = 41


def _setup(arch: str, kinds: list[str], dtype=torch.float64, **cfg):
    torch.manual_seed(0)
    base = {"arch": arch, "size": "micro", **cfg}
    if arch != "vgg16":
        base["vocab_size"] = VOCAB
    model = build_model(base).to(dtype)
    plain = copy.deepcopy(model)
    part = build_partition(model, kinds)
    return model, plain, part


def _inputs(arch: str, dtype=torch.float64, b=3, t=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    if arch == "vgg16":
        return torch.randn(b, 3, 32, 32, generator=g, dtype=dtype)
    return torch.randint(0, VOCAB, (b, t), generator=g)


def _random_active(n: int, seed: int = 2) -> torch.Tensor:
    active = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < 0.5
    active[0], active[-1] = False, True
    return active


def _run(model, x, seed=5):
    """One seeded train-mode forward (dropout on) and backward; returns (output, input grad)."""
    x = x.clone().requires_grad_(x.is_floating_point())
    torch.manual_seed(seed)
    out = model(x)
    (out.sum() + model.aux_loss()).backward()
    return out, x.grad


def _check_grads(model, plain, part, active):
    """Active elements: same gradient as the plain model; frozen elements: zero or no gradient."""
    params = dict(model.named_parameters())
    masks = part.expand(active, params, True)
    for name, p in plain.named_parameters():
        q = params[name]
        keep = masks.get(name, torch.tensor(True)).expand_as(p)
        if q.grad is None:
            assert not keep.any(), f"{name}: active elements got no gradient"
            continue
        torch.testing.assert_close(q.grad[keep], p.grad[keep], rtol=0, atol=1e-6, msg=f"{name}: active slice differs")
        assert torch.count_nonzero(q.grad[~keep]) == 0, f"{name}: frozen slice has a nonzero gradient"


@pytest.mark.parametrize(
    "arch,kinds",
    [("bert", ["head"]), ("vgg16", ["filter"]), ("switch", ["head", "expert"])],
)
def test_forward_bitwise_and_gradients_equal_plain(arch, kinds):
    model, plain, part = _setup(arch, kinds)
    pb = install_partial_backward(model, part)
    active = _random_active(len(part))
    pb.set_active(active)
    x = _inputs(arch)
    out_p, gx_p = _run(plain, x)
    out_m, gx_m = _run(model, x)
    assert torch.equal(out_m, out_p)  # bitwise, dropout included
    if gx_p is not None:  # VGG: gradient w.r.t. the images
        torch.testing.assert_close(gx_m, gx_p, rtol=0, atol=1e-6)
    _check_grads(model, plain, part, active)
    if arch != "vgg16":  # the input gradient reaches the (always trained) embeddings unchanged
        emb = "net.bert.embeddings.word_embeddings.weight" if arch == "bert" else "embed.weight"
        got, want = dict(model.named_parameters())[emb].grad, dict(plain.named_parameters())[emb].grad
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_float32_forward_bitwise_and_gradients_close():
    model, plain, part = _setup("bert", ["head"], dtype=torch.float32)
    pb = install_partial_backward(model, part)
    pb.set_active(_random_active(len(part)))
    x = _inputs("bert")
    out_p, _ = _run(plain, x)
    out_m, _ = _run(model, x)
    assert torch.equal(out_m, out_p)
    for (name, p), q in zip(plain.named_parameters(), model.parameters()):
        if q.grad is not None and name.endswith("word_embeddings.weight"):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6)


def test_how_each_parameter_is_handled_and_remove_restores():
    model, plain, part = _setup("vgg16", ["filter"])
    pb = install_partial_backward(model, part)
    s = pb.summary()
    assert s["whole"] == []
    assert sorted(s["skip"]) == sorted(n for n in dict(model.named_parameters()) if ".conv." in n)
    assert sorted(s["zero"]) == sorted(n for n in dict(model.named_parameters()) if ".bn." in n)
    # Freeze every filter of conv 0: its tensors stop requiring grad for the step.
    active = torch.ones(len(part), dtype=torch.bool)
    active[part.indices(layer=0)] = False
    pb.set_active(active)
    frozen = [p.requires_grad for n, p in model.named_parameters() if n.startswith("blocks.0.")]
    assert frozen == [False] * 4
    pb.remove()
    assert all(p.requires_grad for p in model.parameters())
    assert not any("forward" in vars(m) for m in model.modules())
    x = _inputs("vgg16")
    assert torch.equal(model.eval()(x), plain.eval()(x))
    with pytest.raises(RuntimeError, match="after remove"):
        pb.set_active(active)


def test_expert_frozen_whole_gets_no_gradient():
    model, plain, part = _setup("switch", ["expert"])
    pb = install_partial_backward(model, part)
    active = torch.ones(len(part), dtype=torch.bool)
    active[1] = False
    pb.set_active(active)
    assert pb.summary()["skip"] == [] and pb.summary()["zero"] == []
    _run(model, _inputs("switch"))
    _run(plain, _inputs("switch"))
    for s in part.modules[1].slices:
        assert dict(model.named_parameters())[s.param].grad is None
    _check_grads(model, plain, part, active)


def test_bad_input_is_a_clear_error():
    model, _, part = _setup("bert", ["head"])
    pb = install_partial_backward(model, part)
    with pytest.raises(ValueError, match="bool tensor of shape"):
        pb.set_active(torch.ones(len(part)))
    with pytest.raises(ValueError, match="bool tensor of shape"):
        pb.set_active(torch.ones(len(part) + 1, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="instance-level forward"):
        install_partial_backward(model, part)


# ------------------------------------------------------------------------------ torch.func / mNTK
def _per_sample_grads(model, x, names):
    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, xi):
        return functional_call(model, p, (xi[None],)).sum()

    g = vmap(grad(f), in_dims=(None, 0))(params, x)
    return {k: g[k] for k in names}


def test_torch_func_sees_full_gradients():
    """Under vmap/grad the replaced forwards run the plain op: per-sample gradients of frozen
    heads are exact (the mNTK needs every module's gradient)."""
    model, plain, part = _setup("bert", ["head"])
    model.eval(), plain.eval()
    pb = install_partial_backward(model, part)
    active = torch.zeros(len(part), dtype=torch.bool)
    active[1] = True
    pb.set_active(active)
    names = part.param_names
    x = _inputs("bert", b=4, t=6)
    got, want = _per_sample_grads(model, x, names), _per_sample_grads(plain, x, names)
    for n in names:
        torch.testing.assert_close(got[n], want[n], rtol=0, atol=1e-10)
        assert torch.count_nonzero(got[n]) > 0


def test_disabled_gives_plain_autograd_then_restores():
    model, plain, part = _setup("bert", ["head"])
    pb = install_partial_backward(model, part)
    active = torch.zeros(len(part), dtype=torch.bool)
    pb.set_active(active)
    assert not any(dict(model.named_parameters())[n].requires_grad for n in part.param_names)
    x = _inputs("bert")
    with pb.disabled():
        _run(model, x)
    _run(plain, x)
    for (name, p), q in zip(plain.named_parameters(), model.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=0, atol=1e-10, msg=name)
    assert not any(dict(model.named_parameters())[n].requires_grad for n in part.param_names)
    assert torch.equal(pb.active, active)


# ------------------------------------------------------------------------------ work really skipped
def _backward_flops(model, x) -> int:
    model.eval()
    x = x.clone().requires_grad_(x.is_floating_point())
    with flop_counter() as c:
        out = model(x)
        fwd = c.get_total_flops()
        (out.sum() + model.aux_loss()).backward()
    return c.get_total_flops() - fwd


def test_half_the_heads_of_a_layer_save_their_weight_gradients_exactly():
    model, _, part = _setup("bert", ["head"], dtype=torch.float32, size="tiny")  # 4 heads, hidden 64
    pb = install_partial_backward(model, part)
    x = _inputs("bert", b=2, t=12)
    full = _backward_flops(model, x)
    active = torch.ones(len(part), dtype=torch.bool)
    heads = part.indices(kind="head", layer=1)
    active[heads[: len(heads) // 2]] = False
    pb.set_active(active)
    half = _backward_flops(model, x)
    n_tok, hidden = 2 * 12, model.config.hidden_size
    # q, k, v: half the rows of the weight gradient; output projection: half the columns.
    # Each skipped part is a [n_tok] x [hidden/2 x hidden] matmul: 2 * n_tok * hidden/2 * hidden.
    assert full - half == 4 * (2 * n_tok * (hidden // 2) * hidden)


def test_frozen_expert_costs_only_its_input_gradient():
    model, _, part = _setup("switch", ["expert"], dtype=torch.float32)
    pb = install_partial_backward(model, part)
    b, t = 2, 8
    x = _inputs("switch", b=b, t=t)
    full = _backward_flops(model, x)
    active = torch.ones(len(part), dtype=torch.bool)
    active[part.indices(kind="expert", layer=0)[2]] = False
    pb.set_active(active)
    frozen = _backward_flops(model, x)
    c = model.config
    cap = math.ceil(model.layers[0].moe.capacity_factor * t / c.num_experts)
    # wi (d -> d_ff) and wo (d_ff -> d) weight gradients over the expert's B x capacity slots; the
    # input gradient through the expert is still needed by the attention and embeddings below.
    assert full - frozen == 2 * (2 * b * cap * c.d_model * c.d_ff)


def test_frozen_filters_save_their_weight_gradients_and_input_gradients_below():
    model, _, part = _setup("vgg16", ["filter"], dtype=torch.float32)
    pb = install_partial_backward(model, part)
    x = _inputs("vgg16", dtype=torch.float32, b=2)
    full = _backward_flops(model, x)
    convs = [blk.conv for blk in model.blocks]
    sizes = [32, 32, 16, 16]  # spatial size of conv layers 0..3 (pools after 1 and 3)

    def conv_flops(i):  # one forward conv (= its weight gradient = its input gradient)
        k = convs[i]
        return 2 * 2 * sizes[i] ** 2 * k.out_channels * k.in_channels * 9

    # Half the filters of conv 2: half of its weight gradient.
    active = torch.ones(len(part), dtype=torch.bool)
    filters = part.indices(kind="filter", layer=2)
    active[filters[: len(filters) // 2]] = False
    pb.set_active(active)
    assert full - _backward_flops(model, x) == conv_flops(2) * (len(filters) // 2) // len(filters)
    # Conv 0 and conv 1 frozen whole: both weight gradients, and the input gradients of conv 1 and
    # conv 2 (nothing below them needs one); conv 0's input gradient is never computed at all
    # (the images need no gradient).
    active = torch.ones(len(part), dtype=torch.bool)
    active[part.indices(layer=0) + part.indices(layer=1)] = False
    pb.set_active(active)
    x_nograd = _inputs("vgg16", dtype=torch.float32, b=2)
    model.eval()
    with flop_counter() as c:
        out = model(x_nograd)
        fwd = c.get_total_flops()
        out.sum().backward()
    pb.set_active(torch.ones(len(part), dtype=torch.bool))
    with flop_counter() as c2:
        out = model(x_nograd)
        fwd2 = c2.get_total_flops()
        out.sum().backward()
    saved = (c2.get_total_flops() - fwd2) - (c.get_total_flops() - fwd)
    assert saved == conv_flops(0) + 2 * conv_flops(1) + conv_flops(2)


@pytest.mark.parametrize("arch,kinds", [("bert", ["head"]), ("vgg16", ["filter"])])
def test_mntk_unchanged_with_frozen_modules(arch, kinds):
    """The project's mNTK (`mat.ntk.module_grams`, hooks + vmap) on a model with the partial
    backward installed and half the modules frozen equals the plain model's, without `disabled()`."""
    ntk = pytest.importorskip("mat.ntk")
    model, plain, part = _setup(arch, kinds)
    pb = install_partial_backward(model, part)
    pb.set_active(_random_active(len(part)))
    x = _inputs(arch, b=4, t=8)
    got = ntk.module_grams(model, x, part, chunk_size=2)
    torch.testing.assert_close(got, ntk.module_grams(plain, x, part, chunk_size=2), rtol=0, atol=1e-10)
