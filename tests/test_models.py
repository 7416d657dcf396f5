"""Models: the uniform contract, named sizes, VGG16's published size, and Switch routing checked
against a token-by-token reference."""

from __future__ import annotations

import math

import pytest
import torch

from mat.models import build_model
from mat.models.bert import build_bert
from mat.models.switch import build_switch

VOCAB = 37


def _tokens(b=3, t=12, seed=0):
    return torch.randint(0, VOCAB, (b, t), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ["bert", "switch"])
def test_text_models_contract(arch):
    torch.manual_seed(0)
    model = build_model({"arch": arch, "size": "micro", "vocab_size": VOCAB}).eval()
    x = _tokens()
    logits = model(x)
    assert logits.shape == (3, 12, VOCAB) and logits.dtype == torch.float32
    aux = model.aux_loss()
    assert aux.shape == ()
    probs = model.attention_probs(x)
    layers = len(model.layer_prefixes())
    assert probs.shape == (layers, 3, 2, 12, 12)
    torch.testing.assert_close(probs.sum(-1), torch.ones(layers, 3, 2, 12))
    params = dict(model.named_parameters())
    for p in model.layer_prefixes():
        assert any(n.startswith(p + ".") for n in params)


def test_vgg_contract():
    torch.manual_seed(0)
    model = build_model({"arch": "vgg16", "size": "micro"}).eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert model.aux_loss().item() == 0.0
    assert len(model.layer_prefixes()) == 13


def test_vgg16_full_width_matches_published_size():
    model = build_model({"arch": "vgg16"})
    assert sum(p.numel() for p in model.parameters()) == 14_728_266
    assert len(model.blocks) == 13
    assert sum(b.conv.out_channels for b in model.blocks) == 4_224
    assert sum(isinstance(b.pool, torch.nn.MaxPool2d) for b in model.blocks) == 5


def test_vgg_width_rounds_and_keeps_at_least_one_channel():
    model = build_model({"arch": "vgg16", "width": 0.001})
    assert [b.conv.out_channels for b in model.blocks] == [1] * 13
    model = build_model({"arch": "vgg16", "width": 0.3})
    assert model.blocks[0].conv.out_channels == round(64 * 0.3)


def test_vgg_kaiming_init_scale():
    torch.manual_seed(0)
    conv = build_model({"arch": "vgg16"}).blocks[5].conv  # 256 -> 256, 3x3
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.02)


@pytest.mark.parametrize(
    "size,layers,hidden,heads",
    [("mini", 4, 256, 4), ("small", 4, 512, 8), ("medium", 8, 512, 8)],
)
def test_bert_named_sizes(size, layers, hidden, heads):
    c = build_bert({"arch": "bert", "size": size, "vocab_size": 100}).config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads) == (layers, hidden, heads)
    assert c.intermediate_size == 4 * hidden
    assert c._attn_implementation == "eager"


def test_bert_explicit_keys_override_size():
    c = build_bert({"arch": "bert", "size": "mini", "vocab_size": 100, "layers": 2, "heads": 8, "dropout": 0.0}).config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.hidden_dropout_prob) == (2, 256, 8, 0.0)


@pytest.mark.parametrize(
    "cfg,match",
    [
        ({"arch": "bert", "size": "micro"}, "vocab_size"),
        ({"arch": "bert", "size": "huge", "vocab_size": 10}, "size 'huge'"),
        ({"arch": "bert", "size": "micro", "vocab_size": 10, "hiddn": 3}, "hiddn"),
        ({"arch": "bert", "vocab_size": 10, "hidden": 30, "heads": 4}, "divisible"),
        ({"arch": "bert", "size": "micro", "vocab_size": 10, "layers": 2.5}, "layers"),
        ({"arch": "gpt"}, "arch 'gpt'"),
        ({"arch": "vgg16", "width": 0}, "width"),
        ({"arch": "switch", "size": "micro", "vocab_size": 10, "capacity_factor": 0}, "capacity_factor"),
    ],
)
def test_bad_configs_raise_clear_errors(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_model(cfg)


def test_same_seed_same_weights():
    def weights():
        torch.manual_seed(3)
        return build_model({"arch": "switch", "size": "micro", "vocab_size": VOCAB}).state_dict()

    a, b = weights(), weights()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_attention_probs_restores_train_mode():
    model = build_model({"arch": "bert", "size": "micro", "vocab_size": VOCAB}).train()
    model.attention_probs(_tokens())
    assert model.training


def test_sdpa_bert_gives_eager_attention_probs_and_keeps_sdpa():
    """sdpa never forms attention probabilities: attention_probs borrows eager attention for one
    call (the same probabilities as an eager model with the same weights), then sdpa is back."""
    torch.manual_seed(0)
    sdpa = build_model({"arch": "bert", "size": "micro", "vocab_size": VOCAB, "attn_implementation": "sdpa"})
    eager = build_model({"arch": "bert", "size": "micro", "vocab_size": VOCAB})
    eager.load_state_dict(sdpa.state_dict())
    x = _tokens()
    torch.testing.assert_close(sdpa.attention_probs(x), eager.attention_probs(x))
    assert sdpa.config._attn_implementation == "sdpa"
    torch.testing.assert_close(sdpa.eval()(x), eager.eval()(x), rtol=1e-5, atol=1e-5)  # same function


# ----------------------------------------------------------------------------- Switch routing
def _reference_moe(moe, hidden):
    """Token-by-token Switch FFN: top-1 expert by router probability, experts fill in token order
    up to capacity, dropped tokens get zero; output scaled by the gate probability."""
    h = moe.layer_norm(hidden)
    b, t, _ = h.shape
    cap = math.ceil(moe.capacity_factor * t / moe.num_experts)
    out = torch.zeros_like(h)
    for i in range(b):
        used = [0] * moe.num_experts
        for j in range(t):
            p = torch.softmax(moe.router(h[i, j]), -1)
            e = int(p.argmax())
            used[e] += 1
            if used[e] <= cap:
                out[i, j] = p[e] * moe.experts[f"expert_{e}"](h[i, j])
    return hidden + out


@pytest.mark.parametrize("capacity_factor", [0.5, 1.5])
def test_switch_dispatch_matches_token_loop(capacity_factor):
    torch.manual_seed(1)
    model = build_switch({"arch": "switch", "size": "micro", "vocab_size": VOCAB, "capacity_factor": capacity_factor})
    moe = model.layers[0].moe.eval()
    hidden = torch.randn(3, 10, 16)
    with torch.no_grad():
        torch.testing.assert_close(moe(hidden), _reference_moe(moe, hidden), rtol=1e-5, atol=1e-6)
    if capacity_factor == 0.5:  # some tokens must have been dropped for the test to mean anything
        with torch.no_grad():
            assert (moe(hidden) == hidden).all(-1).any()


def test_switch_aux_loss_is_fedus_load_balancing():
    torch.manual_seed(2)
    model = build_switch({"arch": "switch", "size": "micro", "vocab_size": VOCAB}).eval()
    x = _tokens(4, 16)
    seen = []
    hooks = [b.moe.router.register_forward_hook(lambda m, i, o: seen.append(o.detach())) for b in model.layers]
    model(x)
    for h in hooks:
        h.remove()
    expected = []
    for logits in seen:  # [B, T, E]
        probs = logits.softmax(-1)
        e = probs.shape[-1]
        f = torch.nn.functional.one_hot(probs.argmax(-1), e).float().mean(1)  # fraction routed, per sequence
        p = probs.mean(1)  # mean router probability, per sequence
        expected.append((e * (f * p).sum(-1)).mean())
    torch.testing.assert_close(model.aux_loss(), torch.stack(expected).mean())


@pytest.mark.parametrize("arch", ["bert", "switch"])
def test_samples_do_not_interact_in_eval(arch):
    """The batched mNTK fast path relies on it (routing groups are single sequences)."""
    torch.manual_seed(0)
    model = build_model({"arch": arch, "size": "micro", "vocab_size": VOCAB, "capacity_factor": 0.75} if arch == "switch"
                        else {"arch": arch, "size": "micro", "vocab_size": VOCAB}).eval()
    x = _tokens(4, 12)
    with torch.no_grad():
        full = model(x)
        for i in range(4):
            torch.testing.assert_close(full[i], model(x[i : i + 1])[0], rtol=1e-5, atol=1e-5)


def test_dropout_active_only_in_train_mode():
    torch.manual_seed(0)
    model = build_model({"arch": "switch", "size": "micro", "vocab_size": VOCAB})
    x = _tokens()
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
