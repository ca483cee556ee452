"""The shape of the tree holds: SQL that writes only in the store, rows written only
through the one way in, a dispatcher that names no feature, no function too long to read,
and a panel's story in its own folder."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "spamfilter_plugin"
SOURCES = [*PACKAGE.rglob("*.py"), *(ROOT / "hooks").rglob("*.py")]
WRITES = re.compile(
    r"\b(INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|REPLACE\s+INTO|"
    r"CREATE\s+(TEMP\s+)?(TABLE|INDEX)|DROP\s+TABLE)\b"
)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            found.append((node.lineno, text))
    return found


def sql_writers(paths) -> list[str]:
    out = []
    for path in paths:
        for line, text in strings(path):
            if WRITES.search(text):
                out.append(f"{rel(path)}:{line}")
    return out


def test_only_the_store_holds_sql_that_writes():
    outside = [p for p in SOURCES if "spamfilter_plugin/store/" not in rel(p)]
    assert sql_writers(outside) == []
    assert sql_writers(p for p in SOURCES if "spamfilter_plugin/store/" in rel(p))  # it is seen


def test_the_sql_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('db.execute(f"UPDATE events SET state=? WHERE id={x}")\n')
    assert sql_writers([bad]) and not sql_writers([PACKAGE / "intake.py"])


def appends(path: Path) -> list[int]:
    """Lines calling ``X.append(...)`` where X is a queue, a store or an outbox."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "append":
                owner = ast.unparse(node.func.value)
                if re.search(r"(queue|outbox|store)\)?$", owner):
                    found.append(node.lineno)
    return found


def test_rows_go_in_only_through_intake():
    writers = {rel(p) for p in SOURCES if appends(p)}
    assert writers == {"spamfilter_plugin/intake.py"}, writers


def test_the_dispatcher_names_no_feature():
    text = (PACKAGE / "manager.py").read_text(encoding="utf-8")
    assert not re.search(r"\bmx\b|\bMX\b|mx_|flow", text)
    assert "spamfilter_plugin.mx" in (PACKAGE / "builtin.py").read_text(encoding="utf-8")


def test_no_function_is_too_long_to_read():
    long = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > 80:
                    long.append(f"{rel(path)}:{node.lineno} {node.name} ({size} lines)")
    assert long == []


def code_strings(path: Path) -> list[str]:
    """The string constants of *path* that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_each_panel_keeps_its_story_in_its_folder():
    from spamfilter_plugin.panels import KINDS

    for kind in KINDS:
        folder = PACKAGE / "panels" / kind
        for part in ("__init__.py", "dns.py", "install.py"):
            assert (folder / part).exists(), f"{rel(folder / part)} is missing"
    commands = ("whmapi1", "manage_hooks", "CMD_API", "event_handler", "get-dns", "userdomains")
    for path in (PACKAGE / "panels").glob("*.py"):  # the shared modules name no panel
        named = [c for c in commands for text in code_strings(path) if c in text]
        assert named == [], f"{rel(path)} names {named}"
