"""``spamfilter setup PANEL`` and ``spamfilter teardown PANEL``: put the plugin on a server in
one command, in order, printing each step, and take it off again in the safe order.

setup: the Python version and the panel; a config skeleton when there is none (then it stops
and says what to fill in); ``check``; the panel hooks; the panel pages; the systemd units of
the worker and the console, enabled and started; the reverse-proxy snippets; the backfill
offered.  Every file it changes is checkpointed first (:class:`~..panels.steps.Checkpoint`)
and a set-up that fails half-way is rolled back.  Run twice, the second run changes no file
and calls ``systemctl`` only to read state.

teardown: the MX records put back first, then the units stopped, disabled and removed, the
hooks and the pages removed (only ours).  The config and the queue are kept.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from typing import Any

from ..config.model import config_path, toml_table
from ..errors import SpamFilterError
from ..panels import KINDS, Panel
from ..panels.steps import Checkpoint, Steps, remove_ours
from ..systemd import MARK, UNITS, Systemctl, unit
from ._common import EXIT_OK, EXIT_USAGE, EXIT_VENDOR
from .install_hooks import panel_and_command, roll_back, state_dir_of

#: where each panel is found under [panel] root (a file or folder), or its command
PANEL_SIGNS = {
    "cpanel": ("path", "usr/local/cpanel"),
    "directadmin": ("path", "usr/local/directadmin"),
    "plesk": ("command", "plesk"),
    "virtualmin": ("path", "etc/webmin/virtual-server"),
}
#: what the skeleton's secrets point at, in the config file's folder
SECRET_FILE = "{folder}/{vendor}-{key}"
EXIT_FILL_IN = 3


def register(sub) -> None:
    s = sub.add_parser(
        "setup",
        help="put the plugin on this server in one command (config, check, hooks, pages, units)",
        description="In order, printing each step and what it changed: checks the Python "
        "version and the panel; writes a config skeleton (0600) if there is none and stops "
        "to have it filled in; runs 'check'; installs the panel hooks and the panel pages; "
        "installs, enables and starts the systemd units of the worker and of the console "
        "(on 127.0.0.1, behind the panel's or a reverse proxy's TLS: the Apache and nginx "
        "snippets are printed); offers the backfill. Every file it changes is checkpointed "
        "first, and a set-up that fails half-way is rolled back. Running it again changes "
        "nothing more.",
    )
    s.add_argument("panel", choices=KINDS, help="the panel on this server")
    s.add_argument(
        "--vendor",
        action="append",
        default=[],
        metavar="NAME",
        help="a vendor for the config skeleton (repeat for several; default: none; only "
        "used when the config file does not exist yet)",
    )
    _common(s)
    s.add_argument(
        "--console-port",
        type=int,
        default=8025,
        metavar="PORT",
        help="the port the console listens on, on 127.0.0.1 (default 8025)",
    )
    s.set_defaults(func=cmd_setup)
    t = sub.add_parser(
        "teardown",
        help="take the plugin off this server: MX restored first, then units, hooks, pages",
        description="In the safe order: every switched MX set is put back (if that fails, "
        "nothing else is removed); the worker and console units are stopped, disabled and "
        "removed; the panel hooks and pages are removed (only ours). The config file and "
        "the queue are kept.",
    )
    t.add_argument("panel", choices=KINDS, help="the panel on this server")
    _common(t)
    t.set_defaults(func=cmd_teardown)


def _common(p) -> None:
    p.add_argument(
        "--units-dir",
        default="/etc/systemd/system",
        metavar="DIR",
        help="where the systemd unit files go (default /etc/systemd/system)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")


# -- setup -----------------------------------------------------------------------------------


def cmd_setup(args) -> int:
    path = config_path(args.config)
    step = _Counter()
    step("Python")
    print(f"ok: Python {sys.version.split()[0]} (3.11 or newer)")
    step("configuration")
    if not path.exists():
        return _skeleton(args, path)
    print(f"ok: {path}")
    try:
        panel, command = panel_and_command(args)
    except (ValueError, SpamFilterError) as exc:
        return _fail(args, exc)
    step(f"the panel ({args.panel})")
    problem = _panel_missing(panel)
    if problem:
        return _fail(args, problem)
    print(f"ok: {args.panel} found under {panel.root}")
    step("check (the config, and one call to each vendor)")
    from .check import cmd_check

    if cmd_check(argparse.Namespace(config=args.config, json=False, verbose=0)) != EXIT_OK:
        print("stopped: fix what check says, then run setup again (nothing was changed)")
        return EXIT_VENDOR
    checkpoint = _checkpoint(args, "setup")
    steps = Steps(args.dry_run, print, checkpoint)
    units = Systemctl(print)
    started: list[str] = []
    try:
        step("panel hooks")
        panel.install(command, steps)
        if panel.has_pages:
            step("panel pages")
            panel.install_ui(command, steps)
        step("systemd units")
        _units(args, command, steps, units, started)
    except (ValueError, RuntimeError, OSError, SpamFilterError) as exc:
        print(f"spamfilter: setup {args.panel}: {exc}", file=sys.stderr)
        if checkpoint is not None:
            for name in reversed(started):
                _quietly(units, "disable", "--now", name)
            roll_back(panel, command, "install", steps)
            if any(p.startswith(args.units_dir) for p, *_ in checkpoint.kept):
                _quietly(units, "daemon-reload")
        return EXIT_USAGE
    step("the console behind TLS")
    print(proxy_snippets(args.console_port))
    step("backfill")
    print("the domains that were here before the hooks: see what would change, then do it:")
    print(f"  {_spamfilter(args)} sync --dry-run\n  {_spamfilter(args)} sync")
    if checkpoint is not None and checkpoint.kept:
        print(f"checkpoint: the files as they were before are kept in {checkpoint.folder}")
    print("done" if not args.dry_run else "dry run: nothing was changed")
    return EXIT_OK


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, what: str) -> None:
        self.n += 1
        print(f"\n[{self.n}] {what}")


def _checkpoint(args, verb: str) -> Checkpoint | None:
    if args.dry_run:
        return None
    return Checkpoint.under(state_dir_of(args), f"{verb}-{args.panel}")


def _fail(args, problem: object) -> int:
    print(f"spamfilter: {args.panel}: {problem}", file=sys.stderr)
    return EXIT_USAGE


def _spamfilter(args) -> str:
    return shlex.join(["spamfilter", "--config", str(config_path(args.config))])


def _panel_missing(panel: Panel) -> str | None:
    kind, sign = PANEL_SIGNS[panel.name]
    if kind == "path":
        where = panel.path(sign)
        return (
            None
            if os.path.exists(where)
            else f"{where} not found: is {panel.name} installed here (and [panel] root right)?"
        )
    tool = panel.conf.get(sign) or sign
    return (
        None
        if shutil.which(tool)
        else f"the {sign} command ({tool}) not found: is {panel.name} installed here?"
    )


def _skeleton(args, path) -> int:
    """Write the config skeleton (0600), say what to fill in, and stop."""
    from ..config.file import DEFAULT_STATE_DIR
    from ..manager import installed_vendors

    installed = installed_vendors()
    unknown = [v for v in args.vendor if v not in installed]
    if not args.vendor or unknown:
        said = f"unknown: {', '.join(unknown)}; " if unknown else ""
        return _fail(
            args,
            f"{path} does not exist; name the vendors for its skeleton with --vendor "
            f"({said}installed: {', '.join(sorted(installed))})",
        )
    folder = str(path.parent)
    lines = [
        "# spamfilter-plugin configuration, written by 'spamfilter setup'.  Fill in every",
        "# FILL-IN value and put each secret in the file named beside it (chmod 600), then",
        "# run 'spamfilter setup' again.",
        *toml_table("general", {"state_dir": DEFAULT_STATE_DIR, "mail_host": "FILL-IN"}),
        "",
        *toml_table("panel", {"kind": args.panel}),
    ]
    todo = ["[general] mail_host: the host (or IP) that receives the filtered mail"]
    for vendor in args.vendor:
        table, needed = _vendor_table(vendor, installed[vendor].load(), folder)
        lines += ["", *toml_table(f"vendors.{vendor}", table)]
        todo += needed
    text = "\n".join(lines) + "\n"
    if args.dry_run:
        print(f"would write: {path} (0600)\n{text}")
        return EXIT_OK
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"write: {path} (0600)")
    print("stopped: fill in, then run setup again:")
    for item in todo:
        print(f"  - {item}")
    return EXIT_FILL_IN


def _vendor_table(vendor: str, module: Any, folder: str) -> tuple[dict[str, Any], list[str]]:
    """The skeleton's table of *vendor*: each required key, a secret as a file reference;
    and what the admin must fill in."""
    from ..config.schema import SecretField

    schema = module.vendor_config_schema()
    schema = schema() if isinstance(schema, type) else schema
    table: dict[str, Any] = {}
    todo = []
    for key, field in schema.fields.items():
        if not field.required:
            continue
        if isinstance(field, SecretField):
            secret = SECRET_FILE.format(folder=folder, vendor=vendor, key=key)
            table[key] = {"file": secret}
            todo.append(f"[vendors.{vendor}] {key}: put it in {secret} (chmod 600)")
        else:
            table[key] = "FILL-IN"
            todo.append(f"[vendors.{vendor}] {key}")
    return table, todo


def _units(args, command: list[str], steps: Steps, units: Systemctl, started: list[str]) -> None:
    """Write the units (checkpointed), reload systemd when one changed, and enable and start
    each that is not already enabled and running."""
    exe = command[0]
    config = str(config_path(args.config).resolve())
    state_dir = state_dir_of(args)
    before = len(steps.lines)
    for name in UNITS:
        text = unit(name, exe, config, state_dir, args.console_port)
        steps.write(os.path.join(args.units_dir, name), text, 0o644)
    changed = any(line.startswith("write: ") for line in steps.lines[before:])
    if args.dry_run:
        for name in UNITS:
            print(f"would run: systemctl enable --now {name} (unless enabled and running)")
        return
    if changed:
        units.change("daemon-reload")
    for name in UNITS:
        if units.enabled(name) and units.active(name):
            print(f"unchanged: {name} is enabled and running")
            continue
        units.change("enable", "--now", name)
        started.append(name)


def _quietly(units: Systemctl, *args: str) -> None:
    try:
        units.change(*args)
    except RuntimeError as exc:
        print(f"spamfilter: rolling back: {exc}", file=sys.stderr)


def proxy_snippets(port: int) -> str:
    """The reverse-proxy configuration that puts the console (on loopback) behind TLS."""
    return f"""The console listens on 127.0.0.1:{port} only. Put it behind the panel's or a
reverse proxy's TLS, and set [console] public_url to the address browsers use.

Apache (a TLS virtual host; mod_proxy and mod_proxy_http enabled):

    ProxyPass        /spamfilter/ http://127.0.0.1:{port}/
    ProxyPassReverse /spamfilter/ http://127.0.0.1:{port}/
    RequestHeader    set X-Forwarded-Proto "https"

nginx (inside the TLS server block):

    location /spamfilter/ {{
        proxy_pass http://127.0.0.1:{port}/;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-Proto https;
    }}"""


# -- teardown --------------------------------------------------------------------------------


def cmd_teardown(args) -> int:
    step = _Counter()
    try:
        panel, command = panel_and_command(args)
    except (ValueError, SpamFilterError) as exc:
        return _fail(args, exc)
    step("MX records put back first")
    if _restore_mx(args) != EXIT_OK:
        print("stopped: an MX set could not be put back; nothing else was removed")
        return EXIT_VENDOR
    checkpoint = _checkpoint(args, "teardown")
    steps = Steps(args.dry_run, print, checkpoint)
    units = Systemctl(print)
    try:
        step("systemd units")
        removed = False
        for name in reversed(UNITS):
            path = os.path.join(args.units_dir, name)
            if not os.path.exists(path):
                continue
            if not args.dry_run and (units.enabled(name) or units.active(name)):
                units.change("disable", "--now", name)
            elif args.dry_run:
                print(f"would run: systemctl disable --now {name} (if enabled or running)")
            removed |= remove_ours(steps, path, MARK)
        if removed and not args.dry_run:
            units.change("daemon-reload")
        step("panel hooks")
        panel.uninstall(command, steps)
        step("panel pages")
        panel.uninstall_ui(command, steps)
    except (ValueError, RuntimeError, OSError, SpamFilterError) as exc:
        return _fail(args, exc)
    if checkpoint is not None and checkpoint.kept:
        print(f"checkpoint: the files as they were before are kept in {checkpoint.folder}")
    print(
        "done; the config and the queue are kept"
        if not args.dry_run
        else "dry run: nothing was changed"
    )
    return EXIT_OK


def _restore_mx(args) -> int:
    from ._common import runtime
    from .mx import _restore

    rt = runtime(argparse.Namespace(config=args.config, verbose=0))
    ns = argparse.Namespace(domain=None, all=True, dry_run=args.dry_run, json=False)
    return _restore(rt, ns)
