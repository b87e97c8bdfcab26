"""Imports go one way: no module of the package imports, even lazily inside a function, one
that imports it back. The one allowed exception is the hot module ``_castore_hook``: it must
stay cheap at start-up, so it reaches the package only through lazy imports (a miss → the slow
path, ssl/certifi imported → the in-process patches, the debug trace), and those are pinned here
too. The graph is read from the source (``ast``), so a new cycle fails here before it can show
up as a half-initialised module at run time."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

SRC = Path(__file__).resolve().parents[2] / "src"
HOT = "_castore_hook"
#: What the hot module may import lazily, and why: a miss, the in-process patches when ssl or
#: certifi is imported, the CASTORE_HOOK_DEBUG trace, the safe-location rule on a miss.
HOT_LAZY = {
    "_castore_hook_paths",
    "castore_hook._slowpath",
    "castore_hook._inprocess",
    "castore_hook._trace",
}


def module_files() -> Dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if "_pyinstaller" in parts:  # build-time hooks for PyInstaller, never imported at run time
            continue
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    found.setdefault("castore_hook._version", SRC / "castore_hook" / "_version.py")  # generated
    return found


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(tree: ast.AST) -> List[ast.AST]:
    """Every import statement, at any depth, except under ``if TYPE_CHECKING:``."""
    found: List[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> Dict[str, Set[str]]:
    modules = module_files()

    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        if not path.exists():
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                # `from pkg import sub` imports the submodule; `from pkg import name` the package.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            for target in targets:
                found = owner(target)
                if found and found != name:
                    graph[name].add(found)
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    graph[HOT] = set()  # its lazy imports are the allowed exception (pinned below)
    assert cycles(graph) == []


def test_the_hot_module_reaches_the_package_only_through_its_lazy_imports() -> None:
    assert import_graph()[HOT] == HOT_LAZY


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The negative control: a graph with a cycle of three and a self-contained leaf.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_lazy_imports_and_skips_type_checking_blocks() -> None:
    graph = import_graph()
    # _slowpath.fresh_plan imports config inside the function.
    assert "castore_hook.config" in graph["castore_hook._slowpath"]
    # resolve imports _contracts only for mypy: no run-time edge.
    assert "castore_hook._contracts" not in graph["castore_hook.resolve"]
