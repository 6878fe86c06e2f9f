"""The package's layers hold: no import cycle among curate's modules, and the lower layers (reading video, shots,
scores, models) never import the upper ones (the runner, the tasks, the stages, the CLI).

Imports are read from the source (``ast``), not executed. A cycle counts only imports that run when a module is
imported (module level, class bodies, ``try`` blocks; not ``if TYPE_CHECKING:`` and not inside functions); the layer
rule counts every import, a function's deferred ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "curate"
LOWER = ("curate.video", "curate.scores", "curate.shots")
UPPER = ("curate.runner", "curate.tasks", "curate.stages", "curate.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Curate modules an import statement names (``from a import b``: ``a.b`` when it is a module, else ``a``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("curate")]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        if not base.startswith("curate"):
            return []
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    return []


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str, *, eager_only: bool) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()

    def walk(nodes) -> None:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(t for t in _targets(node, module, path.name == "__init__.py") if t in MODULES)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if not eager_only:
                    walk(ast.iter_child_nodes(node))
            elif isinstance(node, ast.If) and _is_type_checking(node):
                if not eager_only:
                    walk(node.body)
                walk(node.orelse)
            else:
                walk(ast.iter_child_nodes(node))

    walk(tree.body)
    found.discard(module)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_walker_sees_imports_of_every_kind():
    assert len(MODULES) > 50 and "curate.stage" in MODULES and "curate" in MODULES
    assert "curate.stage" in imports("curate.runner", eager_only=True)
    assert "curate.sharding" not in imports("curate.stage", eager_only=True)  # only under TYPE_CHECKING
    assert "curate.stage" in imports("curate.sharding", eager_only=False)  # deferred, inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    graph = {m: imports(m, eager_only=True) for m in MODULES}
    assert cycles(graph) == []


def test_lower_layers_never_import_the_runner_the_stages_or_the_cli():
    offending = {m: sorted(t for t in imports(m, eager_only=False) if t.startswith(UPPER))
                 for m in MODULES if m.startswith(LOWER)}
    assert {m: t for m, t in offending.items() if t} == {}
