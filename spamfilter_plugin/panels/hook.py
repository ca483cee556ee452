"""``spamfilter panel-hook PANEL ...``: the command a panel runs.

It reads the panel's call, queues the events it means, logs one line, answers the panel
in its convention, and exits 0, whatever happens: a bad payload, a bad or missing config,
a full or read-only disk or an unknown event never blocks or fails the panel's action.
What it could not use or queue is one log line naming the field or the reason, in
``state_dir/panel-hook.log`` and in syslog (facility mail), so a state disk that cannot be
written still leaves a trace; cPanel also gets its non-blocking failure reply
(``0 <reason>``), which it writes to its error log.  No payload is ever logged whole.
"""

from __future__ import annotations

import os
import sys
import time

LOG_NAME = "panel-hook.log"


def _syslog(line: str, error: bool) -> None:
    try:
        import syslog

        syslog.openlog("spamfilter-plugin", 0, syslog.LOG_MAIL)
        syslog.syslog(syslog.LOG_WARNING if error else syslog.LOG_INFO, line)
    except Exception:  # noqa: BLE001 - a trace is best effort; the panel must go on
        pass


def log(state_dir, line: str, *, error: bool = False) -> None:
    """One line in ``state_dir/panel-hook.log`` (0600) and in syslog."""
    from ..redaction import redact

    line = redact(" ".join(line.split()))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if state_dir is not None:
        try:
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
            fd = os.open(
                os.path.join(state_dir, LOG_NAME), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
            )
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(f"{stamp} {'ERROR ' if error else ''}{line}\n")
        except OSError:
            error = True
    _syslog(line, error)


def run(kind: str, argv: list[str], *, config=None, env=None, stdin=None) -> int:
    """Handle one call from panel *kind*; print the panel's reply; return 0."""
    env = dict(os.environ if env is None else env)
    state_dir = None
    adapter = None
    try:
        from ..config import cache as config_cache
        from ..config import file as config_file
        from . import KINDS, configured, load

        if kind not in KINDS:
            log(None, f"panel-hook: unknown panel {kind!r}; one of {', '.join(KINDS)}", error=True)
            return 0
        adapter = load(kind)  # its reply convention, before anything else can fail
        describing = adapter.describes and argv[:1] == ["--describe"]
        if adapter.reads_stdin and not describing and stdin is None:
            stdin = sys.stdin.read()  # the panel expects the whole input to be read
        path = config_file.locate(config)
        cached = config_cache.read_hook_cache(path)
        if cached is not None:  # validated as it is: no need to parse it
            data = {"panel": cached["panel"]} if cached["panel"] else {}
            if cached.get("plans"):
                data["plans"] = cached["plans"]
            state_dir, handlers = cached["state_dir"], cached["handlers"]
        else:
            data, loose, identity = config_file.read(path)
            state_dir, handlers = config_file.state_dir(path, data), None
        adapter, mismatch = configured(data, kind)
        if mismatch:
            log(state_dir, f"{kind}: {mismatch}")
        if describing:
            return _describe(adapter)
        found = adapter.events(argv, env, stdin or "")
        if found.plan_seen is not None:
            compared(state_dir, found)
        planning = bool(found.plan_change and data.get("plans"))
        if not found.events and not planning:
            log(state_dir, f"{kind} {found.what}: ignored ({found.note})")
            return _answer(adapter, True, f"ignored: {found.note}")
        if handlers is None:
            key = config_file.fingerprint(path, identity, config_file.secret_files(data))
            handlers = config_cache.cached_handlers(state_dir, key)
        if handlers is None:  # not validated since it changed: validate it in full, once
            handlers = _validated(path, data, loose, identity)
        said = []
        if planning:
            said.append(
                plan_changed(state_dir, adapter, data["plans"], handlers, found.plan_change)
            )
        if found.events:
            queued = enqueue(state_dir, found.events, handlers, planned(adapter, data.get("plans")))
            rows = "; ".join(f"{label} ({where})" for label, where in queued)
            log(state_dir, f"{kind} {found.what}: queued {rows}")
            said.append("queued " + ", ".join(label for label, _ in queued))
        if planning:
            log(state_dir, f"{kind} {found.what}: {said[0]}")
        return _answer(adapter, True, "; ".join(said))
    except Exception as exc:  # noqa: BLE001 - nothing may fail the panel's action
        from . import PayloadError

        reason = str(exc) or type(exc).__name__
        if isinstance(exc, PayloadError):
            log(state_dir, f"{kind}: payload not used: {reason}", error=True)
            return _answer(adapter, True, f"ignored: {reason}")
        log(state_dir, f"{kind}: not queued: {reason}", error=True)
        return _answer(adapter, False, f"not queued: {reason}")


def planned(adapter, plans):
    """For ``intake.enqueue``'s *allow*: the vendors that protect each event's account under
    *plans* (the ``[plans]`` table; None: every plan protected)."""
    if not plans:
        return None
    from ..plans import PLANNED_HOOKS, allowed

    def allow(event):
        hook, fields = event
        if hook not in PLANNED_HOOKS:
            return None
        domain = fields.get("domain") or str(fields.get("mailbox", "")).rpartition("@")[2]
        return allowed(plans, adapter.plan_of_domain(domain))

    return allow


def compared(state_dir: str, found) -> None:
    """A payload that shows an account's plan but not the one before (DirectAdmin): compared
    with the plan last seen for the account, kept in the local outbox; a different one is
    *found*'s ``plan_change``.  The first sight of an account only remembers its plan."""
    from ..store.outbox import Outbox

    account, plan = found.plan_seen
    outbox = Outbox(state_dir)
    try:
        before = outbox.remember_plan(account, plan)
    finally:
        outbox.close()
    if before is None:
        found.note = f"{account} is on plan {plan} (remembered; no earlier plan known)"
    elif before == plan:
        found.note = f"{account} stays on plan {plan}"
    else:
        found.note = f"{account}: plan {before} -> {plan}"
        found.plan_change = (account, before, plan)


#: the step that removes a downgraded account's domains once the grace time is over
PLAN_STEP = "plan_removal"


def plan_changed(state_dir: str, adapter, plans: dict, handlers: dict, change) -> str:
    """An account moved from one plan to another: its domains are created at once at the
    vendors the new plan protects and the old did not; for each vendor the new plan no
    longer protects, a :data:`PLAN_STEP` step waits ``[panel] plan_grace_hours`` and then
    removes them, unless the plan protects them again by then.  What was queued, in words."""
    import time

    from .. import intake
    from ..events import VendorStep
    from ..plans import protected
    from ..store.outbox import Outbox

    account, old, new = change
    domain_vendors = sorted(v for v, hooks in handlers.items() if "domain_created" in hooks)
    before, after = protected(plans, old, domain_vendors), protected(plans, new, domain_vendors)
    gained = [v for v in after if v not in before]
    lost = [v for v in before if v not in after]
    domains = adapter.domains_of(account)
    if not domains or not (gained or lost):
        return f"plan {old} -> {new} of {account}: nothing changes at a vendor"
    said = []
    outbox = Outbox(state_dir)
    try:
        if gained:
            intake.enqueue(outbox, [("domain_created", {"domain": d}) for d in domains],
                           vendors=gained)  # fmt: skip
            said.append(f"{len(domains)} domain(s) queued at {', '.join(gained)}")
        if lost:
            hours = float(adapter.conf["plan_grace_hours"])
            step = VendorStep(
                domain=domains[0],
                step=PLAN_STEP,
                data={"account": account, "plan": new, "until": time.time() + hours * 3600},
            )
            intake.enqueue(outbox, [step], vendors=lost)
            said.append(f"removal at {', '.join(lost)} after {hours:g} h unless upgraded again")
    finally:
        outbox.close()
    return f"plan {old} -> {new} of {account}: " + "; ".join(said)


def enqueue(
    state_dir: str, events: list[tuple[str, dict]], handlers: dict, allow=None
) -> list[tuple[str, str]]:
    """Queue each ``(hook, fields)`` pair, all in one transaction, through the one way in
    (:func:`~spamfilter_plugin.intake.enqueue`) and the local outbox; for each event,
    ``("hook target", "vendor #row, ...")``.  Every pair is checked before anything is
    written; the passwords are kept out of every message from here on."""
    from .. import intake
    from ..redaction import register
    from ..store.outbox import Outbox

    for _, fields in events:
        if fields.get("password"):
            register(fields["password"])
    outbox = Outbox(state_dir)
    try:
        queued = intake.enqueue(outbox, events, capabilities=handlers, allow=allow)
    finally:
        outbox.close()
    lines = []
    for (hook, _), (target, rows) in zip(events, queued, strict=True):
        shown = ", ".join(f"{v} #{i}" for v, i in rows.items())
        lines.append((f"{hook} {target.split(':', 1)[1]}", shown or "no vendor"))
    return lines


def _validated(path: str, data: dict, loose: bool, identity: str) -> dict:
    """The full validation (loading the plugins; it refreshes the cache for next time)."""
    from pathlib import Path

    from ..config.model import RawConfig
    from ..emit import validated

    raw = RawConfig(path=Path(path), data=data, loose_permissions=loose, identity=identity)
    return validated(raw=raw)[1]


def _describe(adapter) -> int:
    """``--describe`` (cPanel's ``manage_hooks`` asks it): the hooks to register, in JSON."""
    import json

    print(json.dumps(adapter.describe(adapter.conf["hook_command"] or _self_command())))
    return 0


def _answer(adapter, ok: bool, message: str) -> int:
    if adapter is None:
        return 0
    try:
        line, _ = adapter.reply(ok, message)
        if line:
            print(line, flush=True)
    except Exception:  # noqa: BLE001 - a closed stdout must not fail the panel either
        pass
    return 0


def panel_hook_call(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """``(config, [panel, args...])`` when *argv* is a ``panel-hook`` call that needs no
    help text; None otherwise.  Such a call skips the parser, for the panel's sake."""
    config, i = None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" and i + 1 < len(argv):
            config, i = argv[i + 1], i + 2
        elif arg.startswith("--config="):
            config, i = arg.split("=", 1)[1], i + 1
        elif arg in ("-v", "-vv", "--verbose"):
            i += 1
        else:
            break
    rest = argv[i:]
    if rest[:1] != ["panel-hook"] or len(rest) < 2 or {"-h", "--help"} & set(rest):
        return None
    return config, rest[1:]


def _self_command() -> str:
    """How the panel should call us: the ``spamfilter`` next to this Python."""
    here = os.path.join(os.path.dirname(sys.executable), "spamfilter")
    return here if os.path.exists(here) else "spamfilter"
