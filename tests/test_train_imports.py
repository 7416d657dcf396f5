"""No import cycles in the trainer and the layers under it: train/ imports the contract, the
contract imports nothing of the trainer (the cycle loop.py <-> summary.py is gone)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the mat modules it imports anywhere in its file (TYPE_CHECKING and function-level
    imports included: a cycle through them is still a cycle for the reader)."""
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                # `from pkg import submodule` depends on the submodule; `from pkg import name`, on pkg
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def cycles_through(graph: dict[str, set[str]], prefixes: tuple[str, ...]) -> list[list[str]]:
    """Strongly connected components (Tarjan) of more than one module that touch `prefixes`."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 and any(m.startswith(prefixes) for m in comp):
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_through_the_trainer_or_the_run_folder():
    graph = import_graph()
    assert "mat.train.loop" in graph["mat.train"]  # the graph sees the package's imports
    mine = ("mat.train", "mat.run_folder", "mat.atomic", "mat.provenance", "mat.bench")
    assert cycles_through(graph, mine) == []


def test_summary_takes_plain_data():
    graph = import_graph()
    assert "mat.train.loop" not in graph["mat.train.summary"]
    assert "mat.train.loop" not in graph["mat.train.resume"]


def test_the_checker_finds_a_cycle():
    graph = {"a.x": {"a.y"}, "a.y": {"a.x"}, "b": {"a.x"}}
    assert cycles_through(graph, ("a",)) == [["a.x", "a.y"]]
    assert cycles_through(graph, ("b",)) == []
