"""The benchmarks' shared harness and step: what every speed CSV relies on, and that no benchmark
script edits sys.path or imports another one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from mat.bench import harness

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_round_robin_times_every_variant_every_kept_round_in_fresh_orders():
    calls: list[str] = []
    before: list[str] = []
    variants = {k: (lambda k=k: calls.append(k)) for k in "abc"}
    wall, cpu = harness.round_robin(variants, repeats=4, warmup=2, seed=0, before=before.append, label=None)
    assert {k: len(v) for k, v in wall.items()} == {"a": 4, "b": 4, "c": 4} == {k: len(v) for k, v in cpu.items()}
    assert all(t >= 0 for v in wall.values() for t in v)
    assert calls == before and len(calls) == 18
    rounds = [tuple(calls[i : i + 3]) for i in range(0, 18, 3)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds) and len(set(rounds)) > 1  # shuffled
    calls.clear()
    harness.round_robin(variants, repeats=2, warmup=0, seed=0, shuffle=False, label=None)
    assert calls == list("abcabc")


def test_the_benchmark_step_is_the_trainers(one_thread):
    """objective + update on a toy model: the same update as the loss's own backward + SGD step."""
    from mat.train.step import objective, update
    from mat.train.tasks import cross_entropy

    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, -100])
    loss, out = objective(a, x, y, cross_entropy)
    assert int(out.count) == 4
    update(loss, torch.optim.SGD(a.parameters(), lr=0.1))
    torch.nn.functional.cross_entropy(b(x), y, ignore_index=-100).backward()
    torch.optim.SGD(b.parameters(), lr=0.1).step()
    assert all(torch.allclose(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py")))
def test_benchmarks_import_only_the_installed_package(script):
    tree = ast.parse((BENCHMARKS / script).read_text())
    siblings = {p.stem for p in BENCHMARKS.glob("*.py")}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and (node.module or "").split(".")[0] not in siblings, f"{script}: {node.module}"
        elif isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & siblings, script
        elif isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
            pytest.fail(f"{script} touches sys.path (line {node.lineno})")
