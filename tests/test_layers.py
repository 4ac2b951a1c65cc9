"""The import graph only points down: lstm_core (pure) <- lstm_pipeline (settings, workspace, artifacts,
tracking, contract, registry) <- tasks <- flows <- lstm_app (command line, runner, serve, demo). Every import
counts, the ones inside functions too, and no module reaches itself through others."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("lstm_core", "lstm_pipeline", "tasks", "flows", "lstm_app")  # bottom to top


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(dotted: str) -> str | None:
    """The project module an imported name lives in (``lstm_core.config.load_config`` -> ``lstm_core.config``)."""
    parts = dotted.split(".")
    if parts[0] not in LAYERS:
        return None
    for i in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:i])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return ".".join(parts[:i])
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package's own ``__init__`` is not an edge of its children)."""
    graph: dict[str, set[str]] = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = _module(path)
            targets: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [f"{node.module}.{a.name}" for a in node.names]
                else:
                    continue
                targets |= {t for t in map(_resolve, names) if t and t != source and t not in LAYERS}
            graph[source] = targets
    return graph


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_import_points_down_or_within_its_layer():
    graph = import_graph()
    assert {layer(m) for m in graph} == set(range(len(LAYERS)))  # every layer holds modules
    upward = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets if layer(t) > layer(m))
    assert upward == []


def test_no_module_imports_itself_through_others():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set(), "c": {"b"}}, []),
])
def test_the_cycle_finder_finds_a_circle_and_nothing_else(graph, expected):
    assert cycles(graph) == expected


def test_an_upward_import_is_seen_inside_a_function():
    """The flow-importing runner sits on top: an infrastructure module calling it lazily would be caught."""
    graph = import_graph()
    assert "flows.training" in graph["lstm_app.runner"] and layer("lstm_app.runner") > layer("flows.training")
    assert all(not t.startswith(("flows.", "lstm_app.")) for m in graph if m.startswith("lstm_pipeline.")
               for t in graph[m])
