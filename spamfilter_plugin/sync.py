"""Reconcile: bring each vendor's domain list in line with the panel's.

For each enabled vendor that keeps a domain list (``inventory_domains``), the plan is:

* **add** a panel domain the vendor does not hold (``domain_created``);
* **remove** a domain the vendor holds that the panel no longer has, when the plugin put it
  there (the queue's ``provisioned`` record) and its mail still goes where the plugin sent it
  (otherwise it was **taken** over by another destination, and is left alone); one someone
  added at the vendor by hand is **foreign** and left alone unless pruning is asked for;
* **update** a domain whose route (where the vendor sends its clean mail) is not the one the
  panel's destination gives (``domain_updated``, or ``domain_created`` again for a vendor
  without it).

The plan is made as the inventory is read, one vendor at a time, and never held whole: each
change is queued as it comes (in batches of :data:`BATCH` rows per transaction) and the
engine (:mod:`~.engine`) delivers them up to the vendor's ``concurrency`` at once.  A change
that already has a row on its way (pending, dead, or being delivered, from an earlier run
stopped halfway) continues with that row instead of queueing a second one, so a re-run picks
up where the last one stopped and does nothing twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from . import intake
from .errors import ConfigError, InvalidInput, SpamFilterError, VendorError
from .events import (
    DomainCreated,
    DomainDeleted,
    DomainUpdated,
    Event,
    normalise_domain,
    normalise_host,
)
from .manager import Runtime
from .plans import protected, reason
from .queue import Queue, Row, queue_of
from .redaction import get_logger
from .settle import plain_route
from .worker import Delivery, Worker, concurrency_of

log = get_logger(__name__)

#: rows queued per transaction while the plan is read
BATCH = 500

#: seconds a run waits for a change that comes due again soon (one held back a moment)
LINGER = 3.0

#: the event that carries out each action (an update is a creation again for a vendor
#: without domain_updated); ``foreign`` has none: it is left alone
ACTION_HOOKS = {"add": "domain_created", "remove": "domain_deleted", "update": "domain_updated"}
ACTION_OF = {hook: action for action, hook in ACTION_HOOKS.items()}
#: what is reported and never applied: a foreign domain, a name that is not a valid domain,
#: another spelling of a domain (case, a final dot); in a fleet, a domain another server's
#: panel holds (``elsewhere``) and a removal a stale domain list holds back (``held``); a
#: domain the plugin added whose mail the vendor now sends to another destination than this
#: server's (``taken``: another server took it over); a panel domain whose plan does not
#: protect it at the vendor, which the vendor does not hold (``unplanned``: not added)
LEFT_ALONE = ("foreign", "invalid", "variant", "elsewhere", "held", "taken", "unplanned")


@dataclass
class Change:
    """One difference between the panel and a vendor, and what to do about it.

    ``action`` is ``add``, ``remove``, ``update``, or one of :data:`LEFT_ALONE`: ``foreign``
    (held at the vendor, not on the panel, not provisioned by the plugin), ``invalid`` (a
    name that is not a valid domain) or ``variant`` (another spelling of a domain held);
    ``hook`` the event that carries it out; ``row`` the queue row of an earlier run this
    change continues, if any."""

    vendor: str
    domain: str
    action: str
    reason: str
    destination: str | None = None
    row: Row | None = None
    hook: str = ""

    def event(self):
        if self.action == "remove":
            return DomainDeleted(domain=self.domain)
        if self.hook == "domain_updated" and self.destination is not None:
            return DomainUpdated(domain=self.domain, destination=self.destination)
        return DomainCreated(domain=self.domain, destination=self.destination)


@dataclass
class ChangeOutcome:
    """What became of one change: ``done``, ``failed`` (dead, with the vendor's reason),
    ``retrying`` (left to the worker after a temporary failure), ``planned`` (a dry run) or
    ``left`` (a foreign domain)."""

    change: Change
    state: str
    reason: str

    def to_dict(self) -> dict:
        c = self.change
        return {
            "vendor": c.vendor,
            "domain": c.domain,
            "action": c.action,
            "outcome": self.state,
            "reason": self.reason,
            "row": c.row.id if c.row is not None else None,
        }


@dataclass
class VendorReport:
    """A vendor's part of a run: counts per action and outcome, or why it was skipped."""

    vendor: str
    error: str | None = None
    skipped: str | None = None
    held: int = 0
    planned: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {
            "vendor": self.vendor,
            "error": self.error,
            "skipped": self.skipped,
            "held": self.held,
            "planned": dict(self.planned),
            "outcomes": dict(self.outcomes),
        }


# -- where the domains come from --------------------------------------------------------


def read_domains(lines: Iterable[str], source: str) -> dict[str, str | None]:
    """Domains from *lines*, one a line: ``name`` or ``name destination``; blank lines and
    ``#`` comments are skipped.  InvalidInput naming the line of every bad one (up to 5)."""
    wanted: dict[str, str | None] = {}
    problems = []
    for number, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            if len(words) > 2:
                raise InvalidInput("line", "write a domain, then at most a destination host")
            name = normalise_domain(words[0], "domain")
            wanted[name] = normalise_host(words[1], "destination") if len(words) > 1 else None
        except InvalidInput as exc:
            problems.append(f"{source} line {number}: {exc.message}")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InvalidInput("--domains-from", "; ".join(problems[:5]) + more)
    return wanted


def panel_domains(runtime: Runtime) -> dict[str, str | None]:
    """Every domain the configured panel has (the destination left to ``mail_host``)."""
    adapter = runtime.panel_adapter
    if adapter is None:
        raise ConfigError(
            "no domain source: the config has no [panel] table; add one (kind = cpanel, "
            "directadmin, plesk or virtualmin) or give --domains-from FILE (or - for stdin)"
        )
    names = adapter.all_domains()
    if names is None:
        raise ConfigError(
            f"the {adapter.name} adapter cannot list the server's domains; give them with "
            "--domains-from FILE (or - for stdin), one a line"
        )
    return {normalise_domain(n, "domain"): None for n in names}


def printable(text: str) -> str:
    """*text* with every control or formatting character escaped as Python writes it
    (``\\x1b``, ``\\n``, ``\\u202e``), so a name from a vendor cannot move the cursor,
    colour a terminal, reverse text or forge a line of output."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


@dataclass(frozen=True)
class Entry:
    """One domain of a vendor's inventory: its *name* as the vendor spells it, the IDNA
    form we compare (None when it is not a valid domain, with the *problem*), and the
    *route* as compared."""

    raw: str
    name: str | None
    route: str | None
    problem: str = ""

    @property
    def variant(self) -> bool:
        """True when the vendor spells a valid name otherwise than we do (case, a final
        dot, Unicode): the vendor holds the domain, but nothing is done to it from this."""
        return self.name is not None and self.raw != self.name


def inventory_entries(result) -> Iterator[Entry]:
    """An ``inventory_domains`` answer as :class:`Entry` objects, whichever form it has: each
    name normalised like the panel's, one that is not a valid domain refused on its own."""
    for item in result or ():
        raw, route = (item, None) if isinstance(item, str) else item
        raw = str(raw)
        try:
            name, problem = normalise_domain(raw, "domain"), ""
        except InvalidInput as exc:
            name, problem = None, exc.message.split(": ", 1)[-1]
        yield Entry(raw, name, None if route is None else plain_route(str(route)), problem)


# -- the plan ---------------------------------------------------------------------------


class Reconcile:
    """Plans and applies the changes that bring vendors in line with *wanted*.

    :param runtime: the loaded runtime.
    :param wanted: the panel's domains (IDNA) with their destinations (None: ``mail_host``).
    :param prune_foreign: remove domains held at the vendor that the plugin did not add.
    :param elsewhere: in a fleet, the domains other servers' panels hold (with the server).
    :param stale: in a fleet, the servers whose published lists are too old (with their age
        in hours): while there is one, nothing is removed.
    :param plan_of: each wanted domain's plan: a domain whose plan does not protect it at a
        vendor (``[plans]``) is not added there, and removed when the plugin put it there.
    """

    def __init__(
        self,
        runtime: Runtime,
        wanted: dict[str, str | None],
        *,
        prune_foreign: bool = False,
        queue: Queue | None = None,
        elsewhere: Mapping[str, str] | None = None,
        stale: Mapping[str, float] | None = None,
        plan_of: Mapping[str, str | None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.wanted = wanted
        #: each wanted domain's hosting plan (with ``[plans]`` and a panel that tells)
        self.plan_of = plan_of
        self.elsewhere = dict(elsewhere or {})
        self.stale = dict(stale or {})
        self.prune_foreign = prune_foreign
        self.queue = queue or queue_of(runtime.config)
        self._routes: dict[tuple[str, str], str | None] = {}
        #: how many domains the last vendor planned holds
        self.held = 0
        #: the wanted domains the API owns (no panel holds them)
        self.api_owned: set[str] = set()

    @classmethod
    def of(cls, runtime: Runtime, wanted: dict[str, str | None], *, prune_foreign: bool = False):
        """The reconcile of *wanted* (the panel's domains) as ``sync`` runs it: in fleet mode
        with the domains other servers' panels hold and the servers whose lists are stale,
        and with ``[plans]`` each domain's plan, the panel's records read once.  The domains
        the API owns (mail hosted elsewhere: no panel holds them) are wanted too, with their
        destinations, so ``sync`` never removes them."""
        with queue_of(runtime.config) as queue:
            owned = {d: r["destination"] for d, r in queue.api_domains().items()}
        plan_of = _plans(runtime, wanted)
        api_owned = set(owned) - set(wanted)
        wanted = {**owned, **wanted}
        elsewhere, stale = _fleet(runtime, wanted)
        made = cls(
            runtime,
            wanted,
            prune_foreign=prune_foreign,
            elsewhere=elsewhere,
            stale=stale,
            plan_of=plan_of,
        )
        made.api_owned = api_owned
        return made

    def vendors(self, only: Iterable[str] | None = None) -> list[str]:
        """The vendors to reconcile: the enabled ones (or *only* these, each of which must be
        enabled)."""
        enabled = self.runtime.vendors
        if not only:
            return enabled
        only = list(dict.fromkeys(only))
        unknown = [v for v in only if v not in enabled]
        if unknown:
            raise ConfigError(
                f"--vendor {', '.join(unknown)}: not enabled in the config (enabled: "
                f"{', '.join(enabled) or 'none'})"
            )
        return only

    def keeps_list(self, vendor: str) -> bool:
        return self.runtime.handles(vendor, "inventory_domains")

    def route(self, vendor: str, destination: str | None) -> str | None:
        """Where *vendor* should send a domain with *destination*; None when unknown."""
        host = destination or self.runtime.config.general.mail_host
        if not host:
            return None
        key = (vendor, host)
        if key not in self._routes:
            try:
                self._routes[key] = self.runtime.route(vendor, host)
            except SpamFilterError as exc:  # an unresolvable host: no route to compare with
                log.warning("%s: the route for %s is not known (%s)", vendor, host, exc)
                self._routes[key] = None
        return self._routes[key]

    def plan(self, vendor: str) -> Iterator[Change]:
        """The changes for *vendor*, made as its inventory is read, each with the event that
        carries it out and the open queue row it continues, if any.  Raises the vendor's
        error when the inventory cannot be read (nothing is planned then)."""
        outcome = self.runtime.call_isolated(vendor, "inventory_domains")
        if outcome.error is not None:
            raise outcome.error
        open_rows = self.queue.open_rows(vendor, ACTION_HOOKS.values())
        hooks = dict(ACTION_HOOKS)
        if not self.runtime.handles(vendor, "domain_updated"):
            hooks["update"] = "domain_created"
        for change in self._differences(vendor, inventory_entries(outcome.result)):
            if change.action in LEFT_ALONE:
                yield change
                continue
            change.hook = hooks[change.action]
            row = open_rows.get(f"domain:{change.domain}")
            if row is not None and row.hook == change.hook:
                change.row = row
                change.reason += f" (continuing queue row {row.id}, {row.state})"
            yield change

    def _differences(self, vendor: str, entries: Iterable[Entry]) -> Iterator[Change]:
        owned = self.queue.provisioned(vendor)
        held = set()
        for entry in entries:
            name = entry.name
            if name is None:
                reason = f"the vendor's name is not a valid domain ({entry.problem}): left alone"
                yield Change(vendor, printable(entry.raw), "invalid", reason)
                continue
            if entry.variant or name in held:
                held.add(name)
                reason = f"held as {printable(entry.raw)!r}, not as {name}: left alone"
                yield Change(vendor, printable(entry.raw), "variant", reason)
                continue
            held.add(name)
            route = entry.route
            unplanned = self._unplanned(vendor, name)
            if unplanned and name in owned:
                yield Change(vendor, name, "remove", f"{unplanned}; added by the plugin")
                continue
            if unplanned:
                yield Change(vendor, name, "foreign", f"{unplanned}; not added by the plugin")
                continue
            if name in self.wanted:
                expected = self.route(vendor, self.wanted[name])
                if route is not None and expected is not None and route != expected:
                    destination = self.wanted[name] or self.runtime.config.general.mail_host
                    reason = f"mail goes to {route}, not {expected}"
                    yield Change(vendor, name, "update", reason, destination)
            elif name in self.elsewhere:
                continue  # another server's panel holds it: that server's business
            elif name in owned and (taken := self._taken(vendor, name, route)):
                yield Change(vendor, name, "taken", taken)
            elif name in owned and self.stale:
                yield Change(vendor, name, "held", self._held_back())
            elif name in owned:
                reason = "added by the plugin; no longer on the panel"
                if self.runtime.config.fleet is not None:
                    reason = "added by the fleet; on no server's panel"
                yield Change(vendor, name, "remove", reason)
            elif self.prune_foreign:
                reason = "not on the panel, not added by the plugin"
                yield Change(vendor, name, "remove", reason)
            else:
                reason = (
                    "not on the panel and not added by the plugin: left alone "
                    "(--prune-foreign removes it)"
                )
                yield Change(vendor, name, "foreign", reason)
        self.held = len(held)
        for name, destination in self.wanted.items():
            if name in held:
                continue
            unplanned = self._unplanned(vendor, name)
            if unplanned:
                yield Change(vendor, name, "unplanned", f"{unplanned}: not added")
            else:
                where = "owned by the API" if name in self.api_owned else "on the panel"
                yield Change(vendor, name, "add", f"{where}, not at the vendor", destination)
        for name, server in self.elsewhere.items():
            if name not in held and name not in self.wanted:
                reason = f"on {server}'s panel, not at the vendor: {server}'s sync adds it"
                yield Change(vendor, name, "elsewhere", reason)

    def _unplanned(self, vendor: str, name: str) -> str:
        """Why the panel domain *name*'s plan does not protect it at *vendor*; "" when it
        does (or the domain is not the panel's, or there are no plans)."""
        if self.plan_of is None or name not in self.plan_of:
            return ""
        table, plan = self.runtime.config.plans, self.plan_of[name]
        if vendor in protected(table, plan, [vendor]):
            return ""
        return reason(table, plan, vendor)

    def _taken(self, vendor: str, name: str, route: str | None) -> str:
        """Why the plugin's domain *name* is not removed though no panel has it: the vendor
        sends its mail to another destination than this server gave it; "" when not."""
        if route is None:
            return ""
        given = self.queue.destinations(vendor, name)  # None: general.mail_host
        ours = {r for r in (self.route(vendor, d) for d in given) if r is not None}
        if not ours or route in ours:
            return ""
        return (
            f"added by the plugin, but its mail goes to {route}, not to this server's "
            f"{' or '.join(sorted(ours))}: another destination took it over; left alone"
        )

    def _held_back(self) -> str:
        limit = (
            self.runtime.config.fleet.inventory_max_age_hours if self.runtime.config.fleet else 0
        )
        ages = ", ".join(
            f"{server}'s is {age:.0f} h old" if age != float("inf") else f"{server} has none"
            for server, age in sorted(self.stale.items())
        )
        return (
            f"on no panel, but not removed while a server's domain list is out of date "
            f"({ages}; inventory_max_age_hours = {limit:g}): run 'spamfilter fleet publish' "
            "there"
        )

    # -- applying ---------------------------------------------------------------------

    def apply(
        self,
        vendor: str,
        changes: Iterable[Change],
        report: Callable[[ChangeOutcome], None],
        *,
        started: Callable[[int], None] = lambda total: None,
    ) -> None:
        """Queue *changes* and deliver them through the engine, reporting each outcome as
        it is known.  *started* is told how many changes are on their way."""
        queue, total = self.queue, 0
        batch: list[Event] = []
        adopted: set[int] = set()  # rows of an earlier run: another worker may deliver them
        queue.choose((), fresh=True)

        def flush() -> None:
            if batch:
                queued = intake.enqueue(queue, batch, vendors=[vendor])
                queue.choose(rows[vendor] for _, rows in queued)
                batch.clear()

        for change in changes:
            if change.action in LEFT_ALONE:
                report(ChangeOutcome(change, "left", change.reason))
                continue
            total += 1
            if change.row is None:
                batch.append(change.event())
                if len(batch) >= BATCH:
                    flush()
                continue
            if change.row.state == "dead":
                queue.retry(change.row.id)
            elif change.row.state == "pending":
                queue.due_now(change.row.id)  # tried now, not when its backoff ends
            queue.choose([change.row.id])
            adopted.add(change.row.id)
        flush()
        started(total)

        def delivered(deliveries: list[Delivery]) -> None:
            for d in deliveries:
                if d.final_state == "pending":  # it may come due again within this run
                    continue
                adopted.discard(d.row.id)
                report(outcome_of(vendor, d.row, d.final_state, d.outcome))

        limits = {vendor: concurrency_of(self.runtime.contexts[vendor])}
        worker = Worker(self.runtime, queue=queue, on_deliveries=delivered, limits=limits)
        worker.run(chosen=True, linger=LINGER)
        for row in queue.chosen_rows():  # left to the worker (retrying, or being delivered)
            adopted.discard(row.id)
            report(outcome_of(vendor, row, "retrying", None, note=row.last_error or "queued"))
        for row_id in adopted:  # delivered meanwhile by another worker
            now = queue.get(row_id)
            if now is not None:
                report(outcome_of(vendor, now, now.state, None, note=now.last_error or ""))
        queue.choose((), fresh=True)


def outcome_of(
    vendor: str, row: Row, state: str, outcome, note: str | None = None
) -> ChangeOutcome:
    """A delivered (or left) row as the ChangeOutcome of its change."""
    domain = row.target.split(":", 1)[1]
    change = Change(vendor, domain, ACTION_OF.get(row.hook, row.hook), "", row=row)
    if outcome is not None and outcome.ok:
        result = outcome.result if isinstance(outcome.result, dict) else {}
        return ChangeOutcome(change, "done", str(result.get("message") or "done"))
    if outcome is None and state in ("done", "superseded"):
        return ChangeOutcome(change, "done", f"{state} by another worker")
    if state == "dead":
        return ChangeOutcome(change, "failed", str(outcome.error) if outcome else note or "")
    error = outcome.error if outcome is not None else None
    if isinstance(error, VendorError) or note:
        reason = str(error) if error is not None else note
        return ChangeOutcome(change, "retrying", f"{reason}; the worker retries it")
    return ChangeOutcome(change, "retrying", "left to the worker")


def _fleet(rt, wanted) -> tuple[dict[str, str], dict[str, float]]:
    """In fleet mode: the domains other servers' panels hold (their published lists), and
    the servers whose lists are older than ``inventory_max_age_hours`` (age in hours)."""
    fleet = rt.config.fleet
    if fleet is None:
        return {}, {}
    import time

    with queue_of(rt.config) as queue:
        domains, published = queue.fleet_inventory()
    me = fleet.server
    elsewhere = {d: s for d, (s, _) in domains.items() if s != me and d not in wanted}
    now = time.time()
    stale = {
        s: (now - at) / 3600
        for s, at in published.items()
        if s != me and now - at > fleet.inventory_max_age_hours * 3600
    }
    return elsewhere, stale


def _plans(rt, wanted) -> dict[str, str | None] | None:
    """With a ``[plans]`` table and a panel: each wanted domain's plan, the panel's records
    read once; None otherwise (every domain protected)."""
    adapter = rt.panel_adapter
    if not rt.config.plans or adapter is None:
        return None
    return adapter.plans_of(wanted)
