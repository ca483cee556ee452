"""The package has no import cycles: read every module's imports (ast), lazy ones inside
functions and type-only ones under ``if TYPE_CHECKING:`` included (a cycle for the type
checker is still two modules that cannot be read apart), and look for a cycle; the CLI's
command modules, which ``spamfilter_plugin.cli`` loads by discovery rather than by an import
statement, count as imported by it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# where each part of the installed package lives in the checkout
SOURCES = {
    "spamfilter_plugin": ROOT / "spamfilter_plugin",
    "spamfilter_plugin.hooks": ROOT / "hooks",
    "spamfilter_plugin.templates": ROOT / "templates",
}
DISCOVERED = {"spamfilter_plugin.cli": ROOT / "spamfilter_plugin" / "cli"}


def modules(sources: dict[str, Path]) -> dict[str, Path]:
    found = {}
    for package, folder in sources.items():
        for path in folder.rglob("*.py"):
            parts = [*package.split("."), *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str], root_package: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    deps = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # "from x import y" imports the submodule x.y when there is one
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            # the nearest module we know ("a.b.C" is module a.b)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith(root_package) and target != name:
                deps.add(target)
    return deps


def import_graph(sources: dict[str, Path], discovered: dict[str, Path]) -> dict[str, set[str]]:
    found = modules(sources)
    root_package = next(iter(sources))
    graph = {name: imports_of(name, path, set(found), root_package) for name, path in found.items()}
    for package, folder in discovered.items():
        graph[package] |= {f"{package}.{p.stem}" for p in folder.glob("[!_]*.py")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph(SOURCES, DISCOVERED)
    assert len(graph) > 30 and "spamfilter_plugin.cli.emit" in graph["spamfilter_plugin.cli"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_store_imports_nothing_above_it():
    graph = import_graph(SOURCES, DISCOVERED)
    allowed = {
        "spamfilter_plugin.errors",
        "spamfilter_plugin.events",
        "spamfilter_plugin.redaction",
        "spamfilter_plugin.store.base",
        "spamfilter_plugin.store.outbox",
        "spamfilter_plugin.store",
    }
    assert graph["spamfilter_plugin.store.sqlite"] <= allowed
    # the outbox (the panel hook's path) uses the key-file helpers, which use errors alone
    assert graph["spamfilter_plugin.store.outbox"] == {
        "spamfilter_plugin.errors",
        "spamfilter_plugin.keyfile",
        "spamfilter_plugin.store",
    }
    assert graph["spamfilter_plugin.keyfile"] == {"spamfilter_plugin.errors"}
    assert "spamfilter_plugin.config.schema" not in graph["spamfilter_plugin.config.model"]


def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        (tmp_path / "pkg" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / rel).write_text(text)
    return {"pkg": tmp_path / "pkg"}


@pytest.mark.parametrize(
    "files",
    [
        # a lazy import inside a function closes the cycle
        {
            "__init__.py": "",
            "a.py": "from . import b\n",
            "b.py": "def f():\n    from .a import x\n",
        },
        # absolute imports, through a third module
        {
            "__init__.py": "",
            "a.py": "import pkg.b\n",
            "b.py": "from pkg import c\n",
            "c.py": "from pkg.a import thing\n",
        },
        # a subpackage importing its parent's module that imports it back
        {
            "__init__.py": "",
            "x.py": "from .sub.y import z\n",
            "sub/__init__.py": "",
            "sub/y.py": "def g():\n    from ..x import w\n",
        },
    ],
)
def test_the_check_finds_cycles(tmp_path, files):
    cycle = find_cycle(import_graph(_package(tmp_path, files), {}))
    assert cycle is not None and cycle[0] == cycle[-1]


def test_type_checking_imports_count_too(tmp_path):
    """A cycle through an import only the type checker reads is still a cycle."""
    files = {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n",
    }
    assert find_cycle(import_graph(_package(tmp_path, files), {})) == ["pkg.a", "pkg.b", "pkg.a"]
