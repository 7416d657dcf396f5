"""No import cycles in src/mat: every `import` and `from ... import` (at module level or inside a
function, since a deferred import is still a dependency) is an edge between modules; the graph
must have no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(src: Path = SRC, package: str = "mat") -> dict[str, set[str]]:
    """{module: the project modules it imports} for every .py file under src/<package>."""
    files = {_module_name(p, src): p for p in (src / package).rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import sub` imports the module pkg.sub when there is one
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in files:  # `import mat.x.y` where y is not a module
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    graph[mod].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, on, stack, out = {}, {}, set(), [], []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_cycle_made_of_deferred_imports(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from toy.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")
    (pkg / "c.py").write_text("import toy.a\n")
    (pkg / "d.py").write_text("from toy import a\n")
    assert cycles(import_graph(tmp_path, "toy")) == [["toy.a", "toy.c", "toy.sub.b"]]


def test_src_has_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles in src/mat: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_figure_abstraction_is_at_the_bottom_of_the_report_package():
    graph = import_graph()
    assert not {m for m in graph["mat.report.figure"] if m.startswith("mat.")}
    builders = ["mat.report.curve_figures", "mat.report.mntk_figures", "mat.report.overfit_figure",
                "mat.report.head_training_figure"]
    for b in builders:
        assert "mat.report.figure" in graph[b] and "mat.report.targets" not in graph[b], b


def test_summary_and_resume_take_plain_data():
    """The run summary and the resume decision know nothing of the Trainer (was: summary.py
    imported Trainer, a loop.py <-> summary.py cycle)."""
    graph = import_graph()
    assert "mat.train.loop" in graph["mat.train"]  # the graph sees the package's imports
    assert "mat.train.loop" not in graph["mat.train.summary"]
    assert "mat.train.loop" not in graph["mat.train.resume"]
