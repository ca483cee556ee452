"""Every hook is documented (docs/hooks.md) with its exact signature, and tested; every
command is on the commands page (docs/commands.md) and in the site's navigation."""

import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from spamfilter_plugin import hookspecs
from spamfilter_plugin.events import LIFECYCLE_HOOKS

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(
    name
    for name, fn in vars(hookspecs).items()
    if inspect.isfunction(fn) and hasattr(fn, hookspecs.PROJECT + "_spec")
)


def signature(name):
    params = inspect.signature(getattr(hookspecs, name)).parameters
    return f"{name}({', '.join(params)})"


def test_hookspecs_are_discovered():
    assert {
        "domain_created",
        "domain_deleted",
        "domain_updated",
        "mailbox_added",
        "mailbox_deleted",
        "password_reset",
        "settings_fragments",
        "settings_submitted",
        "inventory_domains",
        "domain_route",
        "domain_current_route",
        "domain_suspended",
        "domain_unsuspended",
        "publish_dns_record",
        "vendor_check",
        "vendor_config_schema",
        "vendor_step",
        "delivery_succeeded",
        "step_run",
        "deliveries_recorded",
        "worker_chores",
    } == set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_documented_with_exact_signature(name):
    hooks_page = (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    assert f"`{signature(name)}`" in hooks_page, f"docs/hooks.md lacks `{signature(name)}`"


def commands():
    from spamfilter_plugin.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sorted(sub.choices)


@pytest.mark.parametrize("command", commands())
def test_every_command_is_on_the_commands_page(command):
    page = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    listed = re.findall(r"`spamfilter ([a-z-]+)", page) + re.findall(r", `([a-z-]+) [A-Z\[]", page)
    assert command in listed, f"docs/commands.md does not list `spamfilter {command}`"


def test_every_documentation_page_is_in_the_sites_navigation():
    """mkdocs builds what the navigation names; a page left out is not found on the site."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert pages and all(page in nav for page in pages), [p for p in pages if p not in nav]


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name):
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"^def test_hook_{name}\(", tests, re.M), f"no test_hook_{name} in tests/"


def body_problem(fn) -> str | None:
    """Why *fn* is not a bodiless hookspec (only a docstring), or None."""
    (node,) = ast.parse(textwrap.dedent(inspect.getsource(fn))).body
    body = node.body
    if not (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return "it has no docstring"
    if len(body) > 1:
        return f"it has a body after its docstring (line {body[1].lineno})"
    return None


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_docstring_and_no_body(name):
    fn = getattr(hookspecs, name)
    assert fn.__doc__ and len(fn.__doc__.strip()) > 40
    assert body_problem(fn) is None, f"{name}: {body_problem(fn)}"
    opts = getattr(fn, hookspecs.PROJECT + "_spec")
    if name in LIFECYCLE_HOOKS:
        assert not opts.get("firstresult"), "lifecycle hooks are never firstresult"
    if opts.get("firstresult"):
        assert "Stops at first non-None result" in fn.__doc__


def _with_body(vendor):
    """A hookspec-like function with a body."""
    return vendor.name


def _with_pass(vendor):
    """A hookspec-like function that says pass."""
    pass


def _bodiless(vendor):
    """A proper hookspec."""


def test_the_body_check_can_fail():
    assert "body" in body_problem(_with_body)
    assert "body" in body_problem(_with_pass)
    assert body_problem(_bodiless) is None
