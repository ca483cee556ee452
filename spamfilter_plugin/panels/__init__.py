"""Panel adapters: each turns one panel's native hook into our events, knows that panel's
records, and answers the panel in its convention.

One interface for all four panels (:class:`Panel`): the events of a payload
(:meth:`Panel.events`), the domains of an account, the owner of a domain, the mailboxes
of a domain where the panel keeps them in files, and the panel's reply.  An adapter
returns plain ``(hook, fields)`` pairs (:class:`Found`); the entry
(:mod:`.hook`) turns them into events and queues them.

The ``[panel]`` table (:func:`settings`): ``kind``, ``root`` (the panel's files are read
under it; ``/`` on a real server, a fake tree in tests and the demo),
``secondary_domains`` (``protect`` or ``skip``: addon, parked/alias/pointer and sub
domains), ``hook_command`` (how the panel runs us: ``spamfilter --config <file>``
by default) and the panel commands the adapter runs, with their documented defaults.

This package imports only the standard library and :mod:`..eventdata`'s normalisers,
so the panel's wait stays short.
"""

from __future__ import annotations

import importlib
import os

from ..eventdata import normalise_domain, normalise_email

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the hook path
if TYPE_CHECKING:
    from collections.abc import Iterable

KINDS = ("cpanel", "directadmin", "plesk", "virtualmin")
SECONDARY = ("protect", "skip")

COMMON = {"root": "/", "secondary_domains": "protect", "hook_command": "", "plan_grace_hours": 72}

#: the ``[panel]`` keys that are numbers (the others are strings)
NUMBERS = ("plan_grace_hours",)


class PayloadError(ValueError):
    """A payload the adapter cannot use; ``field`` names what is missing or wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class Found:
    """What a payload means: ``events`` as ``(hook, fields)`` pairs (a ``password`` field
    is the plain-text password, to be sealed by the queue), or none with ``note`` saying
    why it is not an event; ``plan_change`` for an account moved to another plan (what
    that means follows from ``[plans]``, in :mod:`.hook`); ``plan_seen`` for an account's
    plan as a payload shows it, where the panel does not say what it was before (the hook
    compares it with the plan it last saw)."""

    __slots__ = ("events", "note", "plan_change", "plan_seen", "what")

    def __init__(
        self, what: str, events=(), note: str = "", plan_change=None, plan_seen=None
    ) -> None:
        self.what, self.events, self.note = what, list(events), note
        #: ``(account, old plan, new plan)`` when the payload moved an account to a plan
        self.plan_change = plan_change
        #: ``(account, plan)``: the plan the account is on now, the old one not given
        self.plan_seen = plan_seen

    def __repr__(self) -> str:  # never the password
        shown = [(h, {k: v for k, v in f.items() if k != "password"}) for h, f in self.events]
        return f"Found({self.what!r}, {shown!r}, note={self.note!r})"


def adapter_module(kind: str):
    """The module of panel *kind*'s adapter (``panels/<kind>/``): its ``ADAPTER`` class and
    its commands' and files' documented ``DEFAULTS``."""
    return importlib.import_module(f"{__name__}.{kind}")


def settings(table: dict | None, kind: str | None = None) -> dict:
    """The ``[panel]`` table with its defaults; ValueError naming the key and the fix."""
    table = dict(table or {})
    kind = table.get("kind", kind)
    if kind not in KINDS:
        raise ValueError(f"kind: must be one of {', '.join(KINDS)}, not {kind!r}")
    defaults = adapter_module(kind).DEFAULTS
    known = {"kind", *COMMON, *defaults}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(
            f"{unknown[0]}: unknown key for a {kind} panel; known keys: {', '.join(sorted(known))}"
        )
    out = {"kind": kind, **COMMON, **defaults, **table}
    for key, value in out.items():
        if key in NUMBERS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key}: must be a number of hours, 0 or more (got {value!r})")
        elif not isinstance(value, str):
            raise ValueError(f"{key}: must be a string")
    if not os.path.isabs(out["root"]):
        raise ValueError(f"root: {out['root']!r} is relative; give an absolute path such as /")
    if out["secondary_domains"] not in SECONDARY:
        raise ValueError("secondary_domains: must be protect (the default) or skip")
    return out


def load(kind: str, table: dict | None = None) -> Panel:
    """The adapter for *kind*, configured by a ``[panel]`` table."""
    conf = settings(table, kind)
    return adapter_module(conf["kind"]).ADAPTER(conf)


def configured(data: dict, kind: str) -> tuple[Panel, str]:
    """The adapter for the panel *kind* that calls us, configured by the ``[panel]`` table
    of *data* (a parsed config file) when that table is for *kind*; else with *kind*'s
    defaults and a note saying why."""
    found = data.get("panel")
    table: dict = found if isinstance(found, dict) else {}
    if table.get("kind", kind) != kind:
        note = f"[panel] kind is {table.get('kind')!r}; using the {kind} defaults"
        return load(kind), note
    return load(kind, {**table, "kind": kind}), ""


class Panel:
    """One panel's adapter.  Subclasses set ``name`` and implement :meth:`events`."""

    name = ""
    #: whether the panel shows what the hook prints (so it prints nothing)
    quiet = True
    #: whether the panel writes the event to the hook's standard input
    reads_stdin = False
    #: whether the panel asks the hook to describe itself (``--describe``)
    describes = False

    def __init__(self, conf: dict) -> None:
        self.conf = conf
        self.root = conf["root"]
        self.protect_secondary = conf["secondary_domains"] == "protect"

    # -- reading a payload ---------------------------------------------------------

    def events(self, argv: list[str], env: dict, stdin: str) -> Found:
        """What the panel's call (its arguments, environment and standard input) means."""
        raise NotImplementedError

    def describe(self, command: str) -> list[dict]:
        """The hooks to register, where the panel asks the hook (:attr:`describes`);
        *command* runs ``spamfilter``."""
        raise NotImplementedError(f"{self.name} does not ask its hooks to describe themselves")

    def reply(self, ok: bool, message: str) -> tuple[str, int]:
        """The line to print (empty: nothing) and the exit status.  Always 0: a hook never
        fails the panel's action."""
        return "", 0

    # -- the panel's records -----------------------------------------------------------

    def path(self, *parts: str) -> str:
        """A panel file's path under ``root``, from the project's own constant parts."""
        return os.path.join(self.root, *(p.lstrip("/") for p in parts))

    def record_path(self, base: str, *names: str) -> str:
        """The path of a panel record under the constant *base*, named by *names* (an
        account, a domain, a file named after one: values from a payload or a login).  The
        one way such a value goes into a path: each name must be one plain path component
        (no ``/``, no NUL, not empty, not starting with ``.``), else PayloadError."""
        for name in names:
            plain_name(name, "path")
        return self.path(base, *names)

    def inventory(self) -> list[tuple[str, str, str]] | None:
        """Every domain on the server as ``(domain, account, kind)`` from the panel's
        records, where it keeps them in files (None otherwise); *kind* is ``main`` (what
        the panel's domain-creation hook protects) or ``secondary`` (addon, parked, alias,
        pointer, sub: protected by the hooks only with ``secondary_domains = "protect"``).
        The hooks and this inventory follow the same rules, so ``sync`` and the console
        see exactly the domains the hooks protect."""
        return None

    def account_inventory(self, account: str) -> list[tuple[str, str]]:
        """Every domain of *account* as ``(domain, kind)`` (see :meth:`inventory`)."""
        raise NotImplementedError(f"{self.name} does not keep an account's domains in files")

    def protects(self, kind: str) -> bool:
        """Whether the hooks protect a domain of *kind* (``main`` or ``secondary``)."""
        return kind == "main" or self.protect_secondary

    def domains_of(self, account: str, *, every: bool = False) -> list[str]:
        """The domains of the panel account *account* the hooks protect (with *every*, all
        of them, whatever ``secondary_domains`` says: what an account's removal deletes)."""
        found = self.account_inventory(plain_name(account, "account"))
        return sorted({d for d, kind in found if every or self.protects(kind)})

    def owner_of(self, domain: str) -> str | None:
        """The account that owns *domain*, or None."""
        raise NotImplementedError(f"{self.name} does not keep domain owners in files")

    def mailboxes_of(self, domain: str) -> list[str] | None:
        """The mailboxes of *domain*, where the panel keeps them in files; None otherwise."""
        return None

    def plan_of(self, account: str) -> str | None:
        """The hosting plan (package) of *account* as the panel's records give it; None when
        the panel does not say (``[plans] default`` applies)."""
        return None

    def plans_of(self, domains: Iterable[str]) -> dict[str, str | None]:
        """Each of *domains*' plans, the panel's records read once: the owners from
        :meth:`inventory`, one :meth:`plan_of` per account (None where unknown)."""
        owners = {d: a for d, a, _ in self.inventory() or ()}
        plans: dict[str, str | None] = {}
        for account in set(owners.values()):
            plans[account] = self.plan_of(account)
        return {d: plans.get(owners.get(d, "")) for d in domains}

    def plan_of_domain(self, domain: str) -> str | None:
        """The plan of the account that owns *domain*; None when unknown, also when the
        panel's records or command cannot be read (``[plans] default`` applies then: an
        event is never lost because its plan could not be read)."""
        try:
            owner = self.owner_of(domain)
            return self.plan_of(owner) if owner else None
        except Exception:  # noqa: BLE001 - a failing panel command must not lose the event
            return None

    def all_domains(self) -> list[str] | None:
        """Every domain on the server the hooks protect, where the panel keeps them in files;
        None otherwise (``sync`` then asks for a list; the console shows what the queue has
        seen)."""
        found = self.inventory()
        if found is None:
            return None
        return sorted({d for d, _, kind in found if self.protects(kind)})

    def role_of(self, user: str) -> str | None:
        """What the panel's records make the login *user*: ``admin``, ``reseller`` or
        ``user`` (an account that owns domains); None when the panel does not know it (a
        mailbox user logs in with the address, which the pages check on their own)."""
        return None

    def accounts_of(self, reseller: str) -> list[str]:
        """The accounts a reseller created (its customers), its own account included."""
        return []

    # -- the rest of the panel's story, each in the panel's own folder ------------------
    #    (imported when asked for: the panel hook's path loads the adapter alone)

    def _part(self, name: str):
        return importlib.import_module(f"{__name__}.{self.name}.{name}")

    def dns(self):
        """This panel's DNS service (:class:`.dns.Zones`, ``<panel>/dns.py``): read a domain's
        records, change its MX set, add and remove TXT records, through the panel's own
        interface."""
        return self._part("dns").ZONES(self.conf, self)

    def install(self, command: list[str], steps) -> None:
        """Register this panel's hooks (``<panel>/install.py``); *command* runs
        ``spamfilter [--config X]``; *steps* (:class:`.steps.Steps`) prints and does."""
        self._part("install").install(self, command, steps)

    def uninstall(self, command: list[str], steps) -> None:
        """Remove this panel's hooks, only ours."""
        self._part("install").uninstall(self, command, steps)

    @property
    def has_pages(self) -> bool:
        """Whether ``install-ui`` can put the settings pages into this panel (it has a
        ``<panel>/ui.py``)."""
        import importlib.util  # not on the panel hook's path

        return importlib.util.find_spec(f"{__name__}.{self.name}.ui") is not None

    def install_ui(self, command: list[str], steps) -> None:
        """Add the settings pages to this panel (``<panel>/ui.py``), where it has a way."""
        if not self.has_pages:
            raise ValueError(
                f"{self.name}: install-ui knows DirectAdmin and cPanel; on {self.name} call "
                "'spamfilter ui render' and 'spamfilter ui submit' from the extension's views"
            )
        self._part("ui").install_ui(self, command, steps)

    def uninstall_ui(self, command: list[str], steps) -> None:
        """Remove the settings pages from this panel, only ours (nothing where it has none)."""
        if self.has_pages:
            self._part("ui").uninstall_ui(self, command, steps)

    # -- helpers for the adapters ---------------------------------------------------

    def secondary(self, what: str, hook: str, domain: object) -> Found:
        """A secondary domain's event (addon, parked/alias/pointer, sub), or a note that
        ``secondary_domains = "skip"`` leaves it alone."""
        if not self.protect_secondary:
            return Found(what, note=f"{domain}: secondary domains are skipped (secondary_domains)")
        return Found(what, [(hook, {"domain": domain_name(domain, "domain")})])

    def account_removal(self, what: str, field: str, user: object, where: str) -> Found:
        """The deletion of every domain of the account *user* (named by the payload's
        *field*) as the panel's files in *where* list them, whatever ``secondary_domains``
        says; a note when it has none."""
        return self.account_events(what, field, user, where, "domain_deleted", every=True)

    def account_events(
        self,
        what: str,
        field: str,
        user: object,
        where: str,
        hook: str,
        *,
        every: bool = False,
        **fields: object,
    ) -> Found:
        """An event of *hook* (with *fields*) for each domain of the account *user* (named
        by the payload's *field*) that the hooks protect (with *every*, each of its
        domains), as the panel's files in *where* list them; a note when it has none."""
        if not isinstance(user, str) or not user:
            raise PayloadError(field, "missing")
        try:
            domains = self.domains_of(user, every=every)
        except PayloadError:
            raise PayloadError(field, f"{user!r} is not a plain account name") from None
        if not domains:
            return Found(what, note=f"account {user} has no domains in {where}")
        return Found(what, [(hook, {"domain": d, **fields}) for d in domains])

    def read_lines(self, base: str, *names: str) -> list[str]:
        """The lines of the panel file at :meth:`record_path` (none when it does not exist)."""
        try:
            with open(self.record_path(base, *names), encoding="utf-8", errors="replace") as fh:
                return [line.rstrip("\n") for line in fh]
        except FileNotFoundError:
            return []


def plain_name(value, field: str) -> str:
    """*value* if it is one plain path component (an account name, a domain, a file named
    after one): not empty, no ``/``, ``\\`` or NUL, not starting with ``.``; PayloadError
    naming *field* otherwise."""
    if (
        not isinstance(value, str)
        or not value
        or value[0] == "."
        or any(c in value for c in "/\\\0")
    ):
        raise PayloadError(field, f"{value!r} is not a plain name; nothing was read")
    return value


def domain_name(value, field: str) -> str:
    """*value* as a lower-case IDNA domain; PayloadError naming *field* otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(field, "missing")
    try:
        return normalise_domain(value.strip(), field)
    except ValueError as exc:
        raise PayloadError(field, str(exc).split(": ", 1)[-1]) from None


def address(local, domain, field: str) -> str:
    """A mailbox address from a local part (or a full address) and a domain."""
    if not isinstance(local, str) or not local.strip():
        raise PayloadError(field, "missing")
    local = local.strip()
    if "@" not in local:
        local = f"{local}@{domain_name(domain, 'domain')}"
    try:
        return normalise_email(local, field)
    except ValueError as exc:
        raise PayloadError(field, str(exc).split(": ", 1)[-1]) from None


def created(domain: str) -> tuple[str, dict]:
    return ("domain_created", {"domain": domain})


def deleted(domain: str) -> tuple[str, dict]:
    return ("domain_deleted", {"domain": domain})


def mailbox_events(hook: str, mailbox: str, password: str | None = None) -> list[tuple[str, dict]]:
    """A mailbox event; a new mailbox with the panel's plain-text password is followed by a
    password reset carrying it, so vendors that keep a login get the panel's password."""
    out = [(hook, {"mailbox": mailbox})]
    if password:
        out.append(("password_reset", {"mailbox": mailbox, "password": password}))
    return out
