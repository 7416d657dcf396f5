"""MLM masking: rates, special tokens, labels, and reproducibility from a passed-in generator."""

from __future__ import annotations

import pytest
import torch

from mat.data import IGNORE_INDEX, MaskSpec, mask_tokens

SPEC = MaskSpec(mask_id=4, vocab_size=50, special_ids=(0, 1, 2, 3, 4))


def _batch(rows=64, cols=256, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 50, (rows, cols), generator=g)
    ids[:, 0] = 2  # [CLS]
    ids[:, 100::37] = 3  # [SEP]
    ids[::3, -20:] = 0  # [PAD]
    ids[:, 7::50] = 1  # [UNK]
    return ids


def test_matches_an_independent_computation_from_the_same_draws():
    ids = _batch()
    inputs, labels = mask_tokens(ids, SPEC, torch.Generator().manual_seed(123))
    g = torch.Generator().manual_seed(123)  # the documented draw order
    u_select = torch.rand(ids.shape, generator=g)
    u_replace = torch.rand(ids.shape, generator=g)
    pick = torch.randint(45, ids.shape, generator=g) + 5  # non-special ids are 5..49
    want_inputs, want_labels = ids.clone(), torch.full_like(ids, IGNORE_INDEX)
    for idx in range(ids.numel()):
        i, j = divmod(idx, ids.shape[1])
        if ids[i, j] < 5 or u_select[i, j] >= 0.15:
            continue
        want_labels[i, j] = ids[i, j]
        if u_replace[i, j] < 0.8:
            want_inputs[i, j] = 4
        elif u_replace[i, j] < 0.9:
            want_inputs[i, j] = pick[i, j]
    assert torch.equal(inputs, want_inputs) and torch.equal(labels, want_labels)


def test_rates_specials_and_labels():
    ids = _batch(rows=256)
    inputs, labels = mask_tokens(ids, SPEC, torch.Generator().manual_seed(0))
    special = ids < 5
    selected = labels != IGNORE_INDEX
    assert not (selected & special).any()
    assert torch.equal(inputs[special], ids[special])
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(inputs[~selected], ids[~selected])
    rate = selected.sum().item() / (~special).sum().item()
    assert abs(rate - 0.15) < 0.005
    n = selected.sum().item()
    masked = (inputs == 4) & selected
    unchanged = (inputs == ids) & selected
    assert abs(masked.sum().item() / n - 0.8) < 0.02
    assert abs(unchanged.sum().item() / n - 0.1 - 0.1 / 45) < 0.02  # a random pick can equal the original
    randomised = selected & ~masked & ~unchanged
    assert (inputs[randomised] >= 5).all()


def test_same_seed_same_masks_other_seed_other_masks():
    ids = _batch()
    a = mask_tokens(ids, SPEC, torch.Generator().manual_seed(9))
    b = mask_tokens(ids, SPEC, torch.Generator().manual_seed(9))
    c = mask_tokens(ids, SPEC, torch.Generator().manual_seed(10))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_accepts_anything_with_a_mask_spec_and_any_shape():
    class Data:
        mask_spec = SPEC

    ids = _batch()[:2, :10].reshape(4, 5)
    inputs, labels = mask_tokens(ids, Data(), torch.Generator().manual_seed(0), prob=1.0)
    assert inputs.shape == ids.shape and ((labels != IGNORE_INDEX) == (ids >= 5)).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cpu_generator_gives_the_same_masks_on_the_gpu():
    ids = _batch()
    cpu = mask_tokens(ids, SPEC, torch.Generator().manual_seed(5))
    gpu = mask_tokens(ids.cuda(), SPEC, torch.Generator().manual_seed(5))
    assert gpu[0].is_cuda and torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[1].cpu(), cpu[1])
