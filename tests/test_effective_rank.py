"""Effective rank (Roy & Vetterli 2007) against closed forms and a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from mat.effective_rank import effective_rank, head_effective_rank
from mat.models import build_model


@pytest.mark.parametrize("t", [1, 4, 9])
def test_identity_has_full_effective_rank(t):
    assert effective_rank(torch.eye(t)).item() == pytest.approx(t, rel=1e-12)


def test_rank_one_has_effective_rank_one():
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(7, 1, generator=g), torch.randn(1, 7, generator=g)
    assert effective_rank(u @ v).item() == pytest.approx(1.0, abs=1e-6)
    uniform_attention = torch.full((5, 5), 0.2)  # every query attends uniformly: rank one
    assert effective_rank(uniform_attention).item() == pytest.approx(1.0, abs=1e-6)


def test_diagonal_matches_hand_computation():
    # singular values 3, 1, 0 (sign does not matter): p = (3/4, 1/4, 0)
    a = torch.diag(torch.tensor([-3.0, 1.0, 0.0]))
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert effective_rank(a).item() == pytest.approx(math.exp(h), rel=1e-12)


def test_batched_and_zero_matrix():
    batch = torch.stack([torch.eye(3), torch.zeros(3, 3), torch.diag(torch.tensor([2.0, 2.0, 0.0]))]).reshape(3, 1, 3, 3)
    out = effective_rank(batch)
    assert out.shape == (3, 1) and out.dtype == torch.float64
    torch.testing.assert_close(out.flatten(), torch.tensor([3.0, 0.0, 2.0], dtype=torch.float64))


def test_head_effective_rank_averages_over_the_batch():
    torch.manual_seed(0)
    model = build_model({"arch": "bert", "size": "micro", "vocab_size": 23})
    x = torch.randint(0, 23, (3, 8), generator=torch.Generator().manual_seed(1))
    er = head_effective_rank(model, x)
    assert er.shape == (2, 2)
    probs = model.attention_probs(x)
    for layer in range(2):
        for head in range(2):
            per_sample = [effective_rank(probs[layer, b, head]).item() for b in range(3)]
            assert er[layer, head].item() == pytest.approx(sum(per_sample) / 3, rel=1e-12)
    assert ((er >= 1.0) & (er <= 8.0)).all()


def test_bad_input():
    with pytest.raises(ValueError, match="matrices"):
        effective_rank(torch.ones(3))
    with pytest.raises(ValueError, match="attention_probs"):
        head_effective_rank(build_model({"arch": "vgg16", "size": "micro"}), torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize("arch", ["bert", "switch"])
def test_a_budget_chunks_the_inputs_and_keeps_the_average(arch, monkeypatch, micro_model):
    from mat.effective_rank import probs_bytes_per_sample

    model, x, _ = micro_model(arch, samples=5, seq_len=8)
    whole = head_effective_rank(model, x)
    per_sample = probs_bytes_per_sample(model, 8)
    # the count is every head's T x T matrix: the model's own attention probabilities say how many
    assert per_sample == model.attention_probs(x[:1]).numel() * 24
    calls = []
    probs = model.attention_probs
    monkeypatch.setattr(model, "attention_probs", lambda inp: calls.append(inp.shape[0]) or probs(inp))
    for fit, chunks in ((1, [1, 1, 1, 1, 1]), (2, [2, 2, 1]), (5, [5]), (9, [5])):
        calls.clear()
        budget_gb = (fit * per_sample + per_sample // 2) / 1e9
        chunked = head_effective_rank(model, x, memory_gb=budget_gb)
        assert calls == chunks
        assert all(n * per_sample <= budget_gb * 1e9 for n in calls)
        # a float32 forward over fewer inputs rounds differently (other GEMM blocking): float32's precision
        torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=0)
        if len(chunks) == 1:  # inputs that fit go through in one call, bitwise as without a budget
            assert torch.equal(chunked, whole)


def test_a_budget_below_one_input_is_a_config_error(run_config):
    from mat.train import load_run_config
    from mat.train.run_config import ConfigError

    # micro BERT at seq 32: 2 layers x 2 heads x 32^2 entries x 24 bytes = 98,304 bytes per input
    cfg = run_config("bert", ntk={"samples": 4, "top_k": 4, "memory_gb": 9.0e-5})
    with pytest.raises(ConfigError, match=r"ntk\.memory_gb: one input's attention matrices .* effective rank need 9\.83e-05 GB"):
        load_run_config(cfg)
    cfg["ntk"]["effective_rank"] = False  # without the ranks the budget is the mNTK's alone
    with pytest.raises(ConfigError) as err:
        load_run_config(cfg)
    assert "effective rank" not in str(err.value)
