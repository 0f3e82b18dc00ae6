"""The one-way house (docs/adr/0090): import contracts, no cycle between server packages, and no
function-local import of ``server.*`` outside the CLI unless the line says why (``# lazy:``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def _unit(module: str) -> str:
    """server.photos.service -> server.photos; server.jobs -> server.jobs."""
    return ".".join(module.split(".")[:2])


def _package_edges() -> dict[str, set[str]]:
    graph = grimp.build_graph("server", "sync", exclude_type_checking_imports=True)
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if _unit(module) != _unit(imported):
                edges[_unit(module)].add(_unit(imported))
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_server_packages() -> None:
    assert cycles(_package_edges()) == []


def test_import_contracts() -> None:
    """Layers (entry -> composition -> domains in one direction -> platform), the sync core
    independent, routes imported by the app only: pyproject.toml [tool.importlinter]."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout


LAZY_ALLOWED = {"server/cli.py"}  # its docstring says why


def test_function_local_imports_of_server_say_why() -> None:
    unexplained = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in LAZY_ALLOWED:
            continue
        source = path.read_text("utf-8")
        lines = source.splitlines()
        for function in ast.walk(ast.parse(source)):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                module = ""
                if isinstance(node, ast.ImportFrom):
                    module = node.module or ""
                elif isinstance(node, ast.Import):
                    module = node.names[0].name
                if module.split(".")[0] == "server" and "# lazy:" not in lines[node.lineno - 1]:
                    unexplained.append(f"{relative}:{node.lineno} {module}")
    assert unexplained == []
