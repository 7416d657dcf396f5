"""Partitions: heads, experts, filters and layers as parameter slices, checked against what the
slices do in the forward pass (a head's slice moves only that head; a filter's only that channel)."""

from __future__ import annotations

import pytest
import torch

from mat.models import build_model, build_partition
from mat.partition import layer_partition

VOCAB = 29


def _model(arch, **kw):
    torch.manual_seed(0)
    cfg = {"arch": arch, "size": "micro", **kw}
    if arch != "vgg16":
        cfg["vocab_size"] = VOCAB
    return build_model(cfg).eval()


def _tokens(b=2, t=9):
    return torch.randint(0, VOCAB, (b, t), generator=torch.Generator().manual_seed(1))


# ----------------------------------------------------------------------------- structure
def test_bert_heads_cover_exactly_the_attention_projections():
    model = _model("bert")
    part = build_partition(model, ["head"])
    assert part.names == ["layer0.head0", "layer0.head1", "layer1.head0", "layer1.head1"]
    params = dict(model.named_parameters())
    part.check(params)
    hidden, d = 16, 8
    assert part.sizes(params).tolist() == [3 * (d * hidden + d) + hidden * d] * 4
    owned = set(part.param_names)
    for name in params:
        is_proj = ".attention.self." in name or name.endswith("attention.output.dense.weight")
        assert (name in owned) == is_proj, name  # output bias, norms, FFN, embeddings, MLM head: outside


def test_switch_heads_and_experts():
    model = _model("switch")
    part = build_partition(model, ["head", "expert"])
    assert part.kinds == ["head", "expert"]
    assert part.indices("head") == list(range(4)) and part.indices("expert") == list(range(4, 12))
    m = part.modules[part.names.index("layer1.expert2")]
    assert (m.kind, m.layer, m.index) == ("expert", 1, 2)
    assert [s.param for s in m.slices] == ["layers.1.moe.experts.expert_2.wi.weight", "layers.1.moe.experts.expert_2.wo.weight"]
    assert all(s.dim is None for s in m.slices)
    owned = set(part.param_names)
    outside = [n for n, _ in model.named_parameters() if n not in owned]
    assert outside == [
        "embed.weight", "rel_bias.embedding.weight",
        "layers.0.attn.layer_norm.weight", "layers.0.moe.layer_norm.weight", "layers.0.moe.router.weight",
        "layers.1.attn.layer_norm.weight", "layers.1.moe.layer_norm.weight", "layers.1.moe.router.weight",
        "final_norm.weight", "lm_head.weight", "lm_head.bias",
    ]


def test_vgg_filters():
    model = _model("vgg16")
    part = build_partition(model, ["filter"])
    channels = [b.conv.out_channels for b in model.blocks]
    assert len(part) == sum(channels)
    m = part.modules[channels[0] + 3]
    assert (m.name, m.kind, m.layer, m.index) == ("conv1.filter3", "filter", 1, 3)
    params = dict(model.named_parameters())
    assert part.sizes(params)[channels[0] + 3].item() == channels[0] * 9 + 3
    assert set(params) - set(part.param_names) == {"classifier.weight", "classifier.bias"}


@pytest.mark.parametrize("arch", ["bert", "switch", "vgg16"])
def test_layer_partition(arch):
    model = _model(arch)
    part = build_partition(model, ["layer"])
    assert part == layer_partition(model, model.layer_prefixes())
    assert part.names == [f"layer{i}" for i in range(len(model.layer_prefixes()))]


def test_full_size_vgg_filter_partition():
    model = build_model({"arch": "vgg16"})
    part = build_partition(model, ["filter"])
    assert len(part) == 4224 and len(part.groups()) == 13


@pytest.mark.parametrize(
    "arch,kinds,match",
    [
        ("bert", ["filter"], "no 'filter' modules"),
        ("vgg16", ["head"], "no 'head' modules"),
        ("bert", ["expert"], "no 'expert' modules"),
        ("bert", ["heads"], "unknown kind"),
        ("bert", "head", "non-empty list"),
        ("bert", ["head", "layer"], "owned whole|sliced along"),
    ],
)
def test_bad_kinds(arch, kinds, match):
    with pytest.raises(ValueError, match=match):
        build_partition(_model(arch), kinds)


# ----------------------------------------------------------------------------- behaviour
def _perturb(model, module, dims=(0,)):
    """Add noise to the slices of `module` along the given dims only."""
    params = dict(model.named_parameters())
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for s in module.slices:
            if s.dim in dims:
                view = params[s.param][s.index(params[s.param].dim())]
                view.add_(torch.randn(view.shape, generator=g))


def _attention_parts(model, x, arch):
    """Per layer: attention probabilities [B, H, T, T] and head contexts [B, T, H, d] (the input
    of the output projection)."""
    if arch == "bert":
        outs = [m.attention.output.dense for m in model.net.bert.encoder.layer]
    else:
        outs = [b.attn.SelfAttention.o for b in model.layers]
    ctx = []
    hooks = [o.register_forward_pre_hook(lambda m, a: ctx.append(a[0].detach().clone())) for o in outs]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    probs = model.attention_probs(x)
    return probs, [c.view(*c.shape[:2], 2, -1) for c in ctx]


@pytest.mark.parametrize("arch", ["bert", "switch"])
@pytest.mark.parametrize("layer,head", [(0, 1), (1, 0)])
def test_qkv_slice_moves_only_its_head(arch, layer, head):
    model = _model(arch)
    part = build_partition(model, ["head"])
    x = _tokens()
    probs0, ctx0 = _attention_parts(model, x, arch)
    _perturb(model, part.modules[part.names.index(f"layer{layer}.head{head}")], dims=(0,))
    probs1, ctx1 = _attention_parts(model, x, arch)
    other = 1 - head
    for lo in range(layer):  # layers below are untouched
        assert torch.equal(probs0[lo], probs1[lo]) and torch.equal(ctx0[lo], ctx1[lo])
    assert torch.equal(probs0[layer][:, other], probs1[layer][:, other])
    assert torch.equal(ctx0[layer][:, :, other], ctx1[layer][:, :, other])
    assert not torch.allclose(probs0[layer][:, head], probs1[layer][:, head])
    assert not torch.allclose(ctx0[layer][:, :, head], ctx1[layer][:, :, head])


@pytest.mark.parametrize("arch", ["bert", "switch"])
def test_output_columns_read_only_their_heads_context(arch):
    """Perturbing head h's columns of the output projection by D changes its output by D @ ctx_h."""
    model = _model(arch)
    part = build_partition(model, ["head"])
    o = model.net.bert.encoder.layer[1].attention.output.dense if arch == "bert" else model.layers[1].attn.SelfAttention.o
    seen = []
    hook = o.register_forward_hook(lambda m, a, out: seen.append((a[0].detach().clone(), out.detach().clone())))
    x = _tokens()
    with torch.no_grad():
        model(x)
        before = o.weight.clone()
        _perturb(model, part.modules[part.names.index("layer1.head1")], dims=(1,))
        delta = o.weight - before
        model(x)
    hook.remove()
    (ctx, out0), (_, out1) = seen
    assert torch.equal(delta[:, :8], torch.zeros_like(delta[:, :8])) and delta[:, 8:].abs().min() > 0
    torch.testing.assert_close(out1 - out0, ctx[..., 8:] @ delta[:, 8:].T, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer,channel", [(0, 2), (4, 11)])
def test_filter_slice_moves_only_its_channel(layer, channel):
    model = _model("vgg16")
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the scale/shift slices matter
        for b in model.blocks:
            b.bn.running_mean.uniform_(-0.5, 0.5)
            b.bn.running_var.uniform_(0.5, 2.0)
    part = build_partition(model, ["filter"])
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    outs = []
    hook = model.blocks[layer].register_forward_hook(lambda m, a, out: outs.append(out.detach().clone()))
    with torch.no_grad():
        model(x)
        _perturb(model, part.modules[part.names.index(f"conv{layer}.filter{channel}")], dims=(0,))
        model(x)
    hook.remove()
    before, after = outs
    others = [c for c in range(before.shape[1]) if c != channel]
    assert torch.equal(before[:, others], after[:, others])
    assert not torch.allclose(before[:, channel], after[:, channel])


def test_frozen_expert_gets_no_gradient():
    model = _model("switch").train()
    part = build_partition(model, ["expert"])
    frozen = model.layers[0].moe.experts["expert_1"]
    frozen.requires_grad_(False)
    model(_tokens(4, 16)).sum().backward()
    params = dict(model.named_parameters())
    frozen_mod = part.modules[part.names.index("layer0.expert1")]
    assert all(params[s.param].grad is None for s in frozen_mod.slices)
    live = [params[s.param].grad for m in part.modules if m is not frozen_mod for s in m.slices]
    assert sum(g is not None and g.abs().sum() > 0 for g in live) >= len(live) // 2
