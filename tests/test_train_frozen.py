"""Frozen means frozen inside the real loop: over every step where the policy did not update a
module (MAT's nuisance or stopped modules, Multirate's slow modules between their k-th steps),
that module's parameter slices are bitwise unchanged, and every module it updated moved."""

from __future__ import annotations

import pytest
import torch

from mat.train import Trainer, load_run_config

pytestmark = pytest.mark.usefixtures("one_thread")


def _slices(trainer: Trainer) -> list[list[torch.Tensor]]:
    params = dict(trainer.model.named_parameters())
    return [
        [params[s.param][s.index(params[s.param].dim())].detach().clone() for s in m.slices]
        for m in trainer.partition.modules
    ]


def _record_steps(monkeypatch) -> list[tuple[int, torch.Tensor, list, list]]:
    """Run-time record of (step, active modules of the decision applied, slices before, after)."""
    record = []
    original = Trainer._train_step

    def step(self, s, epoch):
        used = {}
        masks = self._decision_masks

        def capture(decision, partition, params):
            used["active"] = decision.active.clone()
            return masks(decision, partition, params)

        self._decision_masks = capture
        before = _slices(self)
        try:
            original(self, s, epoch)
        finally:
            self._decision_masks = masks
        record.append((s, used["active"], before, _slices(self)))

    monkeypatch.setattr(Trainer, "_train_step", step)
    return record


CASES = {
    "bert-multirate": ("bert", {"name": "multirate", "k": 3}, {"name": "adamw", "lr": 1.0e-2, "weight_decay": 0.01}),
    "bert-mat": ("bert", {"name": "mat", "start_epoch": 1, "interval": 1, "alpha": 0.9},
                 {"name": "adamw", "lr": 1.0e-2, "weight_decay": 0.01}),
    "vgg16-mat": ("vgg16", {"name": "mat", "start_epoch": 0, "interval": 1, "alpha": 0.5},
                  {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5.0e-4}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_modules_the_policy_froze_did_not_move(case, run_config, tmp_path, monkeypatch):
    arch, method, optim = CASES[case]
    cfg = load_run_config(run_config(arch, method, optim=optim, train={"max_steps": 7, "checkpoint_every": 0}))
    record = _record_steps(monkeypatch)
    Trainer(cfg, tmp_path / "run").run()

    assert [r[0] for r in record] == list(range(7))
    frozen_pairs = 0
    for step, active, before, after in record:
        for i, (b, a) in enumerate(zip(before, after)):
            same = all(torch.equal(x, y) for x, y in zip(b, a))
            if not active[i]:
                assert same, f"step {step}: module {i} was frozen by the policy but its parameters changed"
                frozen_pairs += 1
            else:  # weight decay alone moves an updated module, so an update always shows
                assert not same, f"step {step}: module {i} was updated by the policy but did not move"
    assert frozen_pairs > 0, "the policy never froze a module: the test would prove nothing"
