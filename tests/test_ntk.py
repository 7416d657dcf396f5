"""mNTK (Definition 1): fast path against a brute-force per-sample autograd loop, Eq. 1 (the NTK is
the sum of the mNTKs of a covering partition), and the spectral conventions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mat import ntk
from mat.models import build_model, build_partition
from mat.partition import Module, ParamSlice, Partition

VOCAB = 31
S = 6
KINDS = {"bert": [["head"], ["layer"]], "switch": [["head", "expert"], ["layer"]], "vgg16": [["filter"], ["layer"]]}


def _setup(arch):
    torch.manual_seed(0)
    cfg = {"arch": arch, "size": "micro"}
    if arch == "vgg16":
        model = build_model(cfg)
        with torch.no_grad():  # non-trivial running statistics so the eval-mode BatchNorm rule matters
            for b in model.blocks:
                b.bn.running_mean.uniform_(-0.3, 0.3)
                b.bn.running_var.uniform_(0.5, 2.0)
        x = torch.randn(S, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    else:
        cfg["vocab_size"] = VOCAB
        if arch == "switch":
            cfg["capacity_factor"] = 1.0  # some tokens overflow: the dispatch path is exercised
        model = build_model(cfg)
        x = torch.randint(0, VOCAB, (S, 11), generator=torch.Generator().manual_seed(1))
    return model.train(), x  # train mode on purpose: the mNTK must switch to eval itself


def _reference_grams(model, x, part):
    grads = ntk.per_sample_grads_loop(model, x, part.param_names)
    return torch.stack([(lambda j: j.double() @ j.double().T)(part.gather(grads, i, batch_dims=1)) for i in range(len(part))])


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def _covering(model, part):
    """`part` plus one module holding every parameter it does not touch: covers all parameters."""
    rest = [n for n, _ in model.named_parameters() if n not in part.param_names]
    return Partition(part.modules + (Module("rest", "layer", -1, 0, tuple(ParamSlice(n) for n in rest)),))


@pytest.mark.parametrize("arch", ["bert", "switch", "vgg16"])
@pytest.mark.parametrize("which", [0, 1])
def test_grams_match_per_sample_loop(arch, which):
    model, x = _setup(arch)
    part = build_partition(model, KINDS[arch][which])
    grams = ntk.module_grams(model, x, part, chunk_size=4)  # 4 does not divide S: a partial chunk
    assert grams.shape == (len(part), S, S) and grams.dtype == torch.float64
    ref = _reference_grams(model, x, part)
    assert _rel(grams, ref) < 1e-4
    assert torch.equal(grams, grams.transpose(1, 2))
    assert (torch.linalg.eigvalsh(grams).min(-1).values >= -1e-6 * grams.abs().amax((1, 2))).all()
    # not a vacuous comparison: nearly all modules move the output (an expert a sample never uses, or
    # a filter dead after ReLU, legitimately has a zero row)
    assert (grams.diagonal(dim1=1, dim2=2).sum(1) > 0).double().mean() > 0.9


@pytest.mark.parametrize("route", ["kernel", "direct"])
def test_conv_filter_grams_take_either_route_exactly(monkeypatch, route):
    """Filters' Grams from the layer's patch kernel (`_conv_filter_grams`, no per-sample gradients)
    and from per-sample gradients agree with the brute-force loop, whichever route each layer takes."""
    model, x = _setup("vgg16")
    part = build_partition(model, ["filter"])
    taken = []

    def forced(m, inp, s):
        taken.append(route)
        return route == "kernel"

    monkeypatch.setattr(ntk, "_kernel_is_cheaper", forced)
    grams = ntk.module_grams(model, x, part, chunk_size=4)
    assert taken  # every conv layer was offered the choice
    assert _rel(grams, _reference_grams(model, x, part)) < 1e-4


def test_kernel_route_is_chosen_for_deep_low_resolution_convs():
    """The cost model: at 2 x 2 positions and 512 filters the kernel route is far cheaper; at 32 x 32
    positions and 64 filters forming per-sample gradients is."""
    deep, shallow = nn.Conv2d(512, 512, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1)
    assert ntk._kernel_is_cheaper(deep, torch.zeros(1, 512, 2, 2), 64)
    assert not ntk._kernel_is_cheaper(shallow, torch.zeros(1, 64, 32, 32), 64)
    assert not ntk._kernel_is_cheaper(nn.Linear(4, 4), torch.zeros(1, 4), 64)


@pytest.mark.parametrize("arch", ["bert", "switch", "vgg16"])
def test_sum_of_mntks_is_the_full_ntk(arch):
    """Eq. 1; the full NTK comes from vmap per-sample gradients, an independent path."""
    model, x = _setup(arch)
    cover = _covering(model, build_partition(model, KINDS[arch][0]))
    theta = ntk.full_ntk(model, x)
    assert theta.shape == (S, S)
    assert _rel(ntk.module_grams(model, x, cover).sum(0), theta) < 1e-4


def test_per_sample_loop_matches_analytic_gradient():
    """For f(x) = sum(W x + b), d f / d W = 1 x^T and d f / d b = 1: checks the reference itself."""
    lin = nn.Linear(3, 4)
    x = torch.randn(5, 3)
    g = ntk.per_sample_grads_loop(lin, x, ["weight", "bias"])
    torch.testing.assert_close(g["weight"], x[:, None, :].expand(5, 4, 3))
    torch.testing.assert_close(g["bias"], torch.ones(5, 4))
    theta = ntk.full_ntk(lin, x)
    torch.testing.assert_close(theta, 4 * (x.double() @ x.double().T + 1), rtol=1e-5, atol=1e-6)


def test_vmap_path_matches_loop():
    model, x = _setup("bert")
    names = build_partition(model, ["head"]).param_names
    a, b = ntk.per_sample_grads_vmap(model, x, names, chunk_size=4), ntk.per_sample_grads_loop(model, x, names)
    scale = max(g.abs().max() for g in b.values())  # key biases have zero gradient (softmax shift invariance)
    for n in names:
        assert ((a[n] - b[n]).abs().max() / scale).item() < 1e-5


def test_module_ntk_spectrum():
    model, x = _setup("switch")
    part = build_partition(model, ["head", "expert"])
    eig = ntk.module_ntk(model, x, part)
    assert list(eig) == part.names
    ref = torch.linalg.eigvalsh(_reference_grams(model, x, part))
    for i, name in enumerate(part.names):
        lam = eig[name]
        assert lam.shape == (S,) and lam.dtype == torch.float64
        assert (lam[:-1] >= lam[1:]).all() and (lam >= 0).all()
        assert lam[0].item() == pytest.approx(ref[i, -1].item(), rel=1e-4)
        assert lam.sum().item() == pytest.approx(ref[i].sum().item(), rel=1e-4)  # trace


def test_eigenvalues_clamp_round_off_negatives():
    v = torch.tensor([[1.0, 0.0], [0.0, -1e-12]])
    assert torch.equal(ntk.eigenvalues(v), torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_mode_and_requires_grad_restored_and_frozen_modules_measured():
    model, x = _setup("switch")
    part = build_partition(model, ["expert"])
    model.layers[0].moe.experts["expert_1"].requires_grad_(False)
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    grams = ntk.module_grams(model, x, part)
    assert model.training
    assert {n: p.requires_grad for n, p in model.named_parameters()} == before
    assert all(p.grad is None for p in model.parameters())  # nothing accumulated into .grad
    assert grams[part.names.index("layer0.expert1")].trace() > 0
    model.eval()
    assert torch.equal(ntk.module_grams(model, x, part), grams)  # eval mode: deterministic
    assert not model.training


def test_only_owned_parameters_are_differentiated():
    model, x = _setup("bert")
    part = build_partition(model, ["head"])
    grads = ntk.per_sample_grads_hooks(model, x, part.param_names)
    assert set(grads) == set(part.param_names)
    assert all(g.shape[0] == S for g in grads.values())


def test_bad_inputs():
    model, x = _setup("bert")
    part = build_partition(model, ["head"])
    with pytest.raises(ValueError, match="S >= 1"):
        ntk.module_grams(model, x[:0], part)
    with pytest.raises(KeyError, match="no parameter"):
        ntk.per_sample_grads_loop(model, x, ["nope.weight"])


class _Tiny(nn.Module):
    """Every layer kind with a per-sample rule, on 2-D and 4-D inputs, plus an embedding (vmap
    fallback) and a Linear used twice (contributions of both calls must add up)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(5, 4)
        self.conv = nn.Conv2d(1, 3, 3, padding=1, stride=2)
        self.bn = nn.BatchNorm2d(3)
        self.ln = nn.LayerNorm(6)
        self.shared = nn.Linear(6, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        img = self.emb(x).view(-1, 1, 4, 4)  # x: [B, 4] ids -> 4x4 "image"
        h = torch.tanh(self.bn(self.conv(img))).flatten(1)[:, :6]  # [B, 6]: a 2-D LayerNorm input
        h = self.shared(torch.tanh(self.shared(self.ln(h))))
        return self.out(h)


def test_every_rule_and_repeated_use_match_loop():
    torch.manual_seed(0)
    model = _Tiny()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randint(0, 5, (S, 4), generator=torch.Generator().manual_seed(2))
    names = [n for n, _ in model.named_parameters()]
    fast, ref = ntk.per_sample_grads_hooks(model, x, names, chunk_size=4), ntk.per_sample_grads_loop(model, x, names)
    for n in names:
        assert _rel(fast[n], ref[n]) < 1e-5, n
