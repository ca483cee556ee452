"""Hook specifications: the interface between the host and vendor plugins.

A vendor plugin is a module registered under the ``spamfilter_plugin`` entry-point
group; the entry-point name is the vendor's name.  The module holds
``@hookimpl`` functions only.  The host calls each vendor on its own: every hook
that takes a ``vendor`` argument receives that vendor's
:class:`~spamfilter_plugin.context.VendorContext` (its validated config table,
an HTTP client factory, a logger and the panel services) and is called for that
one vendor only, so a failure in one vendor never reaches another.

Hook implementations may accept any subset of a hook's arguments, by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from marshmallow import Schema

    from .context import Host, VendorContext
    from .events import (
        Domain,
        DomainCreated,
        DomainDeleted,
        DomainSuspended,
        DomainUnsuspended,
        DomainUpdated,
        Event,
        Mailbox,
        MailboxAdded,
        MailboxDeleted,
        PasswordReset,
        VendorStep,
    )
    from .store.base import Queue
    from .templating import Fragment, SettingsResult

PROJECT = "spamfilter_plugin"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: The scopes of settings pages.
SCOPES = ("admin", "domain", "mailbox")


# -------------------------------------------------------------------------
# Vendor set-up
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def vendor_config_schema() -> type[Schema] | None:
    """Return the marshmallow schema class for this vendor's ``[vendors.<name>]`` table.

    The schema should subclass :class:`spamfilter_plugin.config.schema.VendorSchema`
    (which brings ``api_url``, the timeouts, ``retries``, ``max_response_bytes``
    and ``ca_bundle``) and reject unknown keys.  Secrets are declared with
    :class:`spamfilter_plugin.config.schema.SecretField`.  A vendor that implements no
    schema gets :class:`~spamfilter_plugin.config.schema.VendorSchema` itself.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def vendor_check(vendor: VendorContext) -> str | None:
    """Prove that this vendor's credentials work with one cheap authenticated call.

    :param vendor: the vendor's context.
    :return: a short human-readable note of what was proven (``"authenticated; 12 domains"``).
    :raises spamfilter_plugin.errors.VendorError: when the call fails
        (``VendorAuthError`` for refused credentials).

    Used by ``spamfilter check``.  Stops at first non-None result.
    """


# -------------------------------------------------------------------------
# Lifecycle events (past tense, keyword arguments, never firstresult)
#
# Each returns None, or a dict of results the panel needs: ``password`` (a
# Secret the vendor generated), ``dns_records`` (records to publish), ``message``.
# Creating what exists and deleting what is gone must succeed.  Raise a
# VendorError subclass on failure: permanent ones are not retried.
# -------------------------------------------------------------------------


@hookspec
def domain_created(vendor: VendorContext, event: DomainCreated) -> dict[str, Any] | None:
    """A domain was created on the panel: start filtering it at the vendor.

    :param vendor: the vendor's context.
    :param event: the event; ``event.destination`` is where clean mail goes, or
        None to use ``vendor.general.mail_host``.
    """


@hookspec
def domain_deleted(vendor: VendorContext, event: DomainDeleted) -> dict[str, Any] | None:
    """A domain was deleted on the panel: stop filtering it and remove it at the vendor.

    :param vendor: the vendor's context.
    :param event: the event.
    """


@hookspec
def domain_updated(vendor: VendorContext, event: DomainUpdated) -> dict[str, Any] | None:
    """A domain's destination mail host changed on the panel.

    :param vendor: the vendor's context.
    :param event: the event; ``event.destination`` is the new host name or IP.
    """


@hookspec
def domain_suspended(vendor: VendorContext, event: DomainSuspended) -> dict[str, Any] | None:
    """The panel suspended the account that holds the domain.

    Follow the vendor's ``on_suspend`` key through
    :func:`spamfilter_plugin.suspension.suspended`: ``keep`` changes nothing at the vendor;
    ``bypass`` turns the vendor's filtering of the domain off while it goes on relaying the
    mail, after remembering what was there.  Never remove the domain: suspensions are
    usually lifted within days, and an inbound filter without the domain bounces its mail.

    :param vendor: the vendor's context.
    :param event: the event; ``event.reason`` is the panel's reason, if it gave one.
    """


@hookspec
def domain_unsuspended(vendor: VendorContext, event: DomainUnsuspended) -> dict[str, Any] | None:
    """The panel lifted the account's suspension: put back exactly what the suspension
    changed (:func:`spamfilter_plugin.suspension.unsuspended`); a domain whose filtering
    was off before the suspension stays off.

    :param vendor: the vendor's context.
    :param event: the event.
    """


@hookspec
def mailbox_added(vendor: VendorContext, event: MailboxAdded) -> dict[str, Any] | None:
    """A mailbox was created on the panel.

    :param vendor: the vendor's context.
    :param event: the event; ``event.mailbox`` is the new address.
    """


@hookspec
def mailbox_deleted(vendor: VendorContext, event: MailboxDeleted) -> dict[str, Any] | None:
    """A mailbox was deleted on the panel.

    :param vendor: the vendor's context.
    :param event: the event.
    """


@hookspec
def password_reset(vendor: VendorContext, event: PasswordReset) -> dict[str, Any] | None:
    """A password was reset on the panel for a domain account or a mailbox.

    :param vendor: the vendor's context.
    :param event: the event; ``event.password`` is the new password (a Secret),
        or None when the vendor should generate one and return it as
        ``{"password": Secret(...)}``.
    """


@hookspec
def vendor_step(vendor: VendorContext, event: VendorStep) -> dict[str, Any] | None:
    """Carry out a step this vendor queued for itself.

    A lifecycle hook queues a step by returning ``{"steps": [VendorStep(...)]}``; the worker
    writes the steps to the queue in the same transaction that records the event done, so
    a step is never lost and the event's own work is never repeated for it.  A step raises
    :class:`~spamfilter_plugin.errors.VendorWaiting` while what it waits for (a DNS record
    becoming visible) has not happened: it is tried again with backoff, these tries not
    counted against ``general.max_attempts``, so the step decides when to give up.

    :param vendor: the vendor's context.
    :param event: the step; ``event.step`` names it, ``event.data`` is what its hook queued.
    """


# -------------------------------------------------------------------------
# Settings pages
# -------------------------------------------------------------------------


@hookspec
def settings_fragments(
    vendor: VendorContext,
    scope: str,
    target: Domain | Mailbox | None,
    csrf_token: str,
    query: dict[str, str],
) -> Fragment | list[Fragment] | None:
    """Render this vendor's settings fragments for a page.

    :param vendor: the vendor's context.
    :param scope: ``"admin"``, ``"domain"`` or ``"mailbox"``.
    :param target: the domain or mailbox the page is about (None for ``admin``).
    :param csrf_token: the panel's CSRF token; every form must carry it.
    :param query: the page's query parameters: what the user chose to look at (a range of
        statistics, say) through a ``method="get"`` form.  Untrusted: validate it as a form,
        and show a bad value's message rather than fail the page.
    :return: one fragment, a list of them, or None when the vendor has nothing
        for this scope.  Render with :func:`spamfilter_plugin.templating.render_fragment`.
    """


@hookspec(firstresult=True)
def settings_submitted(
    vendor: VendorContext,
    scope: str,
    target: Domain | Mailbox | None,
    form: dict[str, str],
) -> SettingsResult | None:
    """Validate and apply a submitted settings form.

    :param vendor: the vendor's context.
    :param scope: ``"admin"``, ``"domain"`` or ``"mailbox"``.
    :param target: the domain or mailbox (None for ``admin``).
    :param form: the submitted fields (CSRF already checked by the panel).
    :return: the outcome, with a message in plain words.

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------
# Inventory
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def inventory_domains(vendor: VendorContext) -> Iterable[str | tuple[str, str | None]] | None:
    """List the domains this vendor holds for our account (lower-case IDNA).

    :param vendor: the vendor's context.
    :return: the domain names, or ``(name, route)`` pairs where *route* is where the vendor
        sends the domain's clean mail, in the form :func:`domain_route` gives (None when the
        vendor does not say); None when the vendor keeps no domain list.  An iterator is
        welcome: ``spamfilter sync`` reads it once, as it comes.

    ``spamfilter sync`` compares it with the panel's domains.  Stops at first non-None result.
    """


@hookspec(firstresult=True)
def domain_route(vendor: VendorContext, destination: str) -> str | None:
    """Where this vendor would send a domain's clean mail after ``domain_created`` with this
    destination, in the form :func:`inventory_domains` reports routes (SpamWall's
    ``ip:port``, for one).  ``spamfilter sync`` updates a domain whose route differs.

    :param vendor: the vendor's context.
    :param destination: the destination host name or IP (the event's, or
        ``general.mail_host``).
    :return: the route; None to take the destination as it is (lower-case, without a
        trailing dot), which is what a vendor that stores the host name needs.

    Stops at first non-None result.
    """


@hookspec(firstresult=True)
def domain_current_route(vendor: VendorContext, domain: Domain) -> str | None:
    """Where this vendor sends *domain*'s clean mail now, in the form :func:`domain_route`
    gives, read from the vendor.

    Before a ``domain_deleted`` is delivered, the route is compared with the one this server
    gave the domain: when another destination took the domain over since (the account moved
    to another server, which created it there), the deletion is not made and its row ends
    ``skipped`` with the reason.  A vendor without this hook is not asked.

    :param vendor: the vendor's context.
    :param domain: the domain about to be deleted.
    :return: the route; None when the vendor does not hold the domain.

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------
# Panel services (implemented by panel adapters, called by vendors)
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def publish_dns_record(domain: Domain, record_type: str, name: str, value: str) -> bool | None:
    """Ask the panel to publish a DNS record a vendor needs (a TXT record proving
    ownership, for example).  Implemented by panel adapters; vendors call it via
    ``vendor.panel.publish_dns_record(...)``.

    :param domain: the zone the record belongs to.
    :param record_type: ``"TXT"``, ``"MX"``, ...
    :param name: the record's owner name (fully qualified).
    :param value: the record's value.
    :return: True when the panel published it, False when it could not, None
        when the adapter does not manage DNS.

    Stops at first non-None result.
    """


# -------------------------------------------------------------------------
# Built-in features (registered by the host like plugins; see builtin.py)
# -------------------------------------------------------------------------


@hookspec
def delivery_succeeded(
    host: Host, vendor: VendorContext, hook: str, event: Event
) -> list[VendorStep] | None:
    """React to a delivery that succeeded: the steps to queue for the same vendor and target.

    Called by the worker after *vendor* handled *event* (of lifecycle hook *hook*, or a
    step) with success, before the outcome is recorded; the steps are queued in the same
    transaction.  The MX flow queues its destination check after a gateway vendor accepted
    a domain, and its restore after the vendor deleted one.

    :param host: the host's view of the runtime: ``config``, ``panel_adapter``, ``contexts``.
    :param vendor: the context of the vendor that delivered.
    :param hook: the hook that was delivered (``domain_created``, ``vendor_step``, ...).
    :param event: the event it delivered.
    :return: the steps to queue, or None.
    :raises spamfilter_plugin.errors.SpamFilterError: the steps cannot be worked out now;
        the delivery is then tried again later (nothing is lost).
    """


@hookspec
def deliveries_recorded(host: Host, queue: Queue, deliveries: list[Any]) -> None:
    """Observe deliveries whose outcomes were just written (the operations counters count
    them), in the transaction that wrote them; also called now and then with none, while a
    worker runs, so a feature can note that it is alive.

    :param host: the host's view of the runtime (see :func:`delivery_succeeded`).
    :param queue: the queue the outcomes were written to (write to it through its methods).
    :param deliveries: each a :class:`~.delivery.Delivery`: its row, outcome, final state and
        duration.
    """


@hookspec
def worker_chores(host: Host, queue: Queue, now: float) -> None:
    """Do what is due of a feature's periodic work (purging old entries, checking drift,
    sending alerts), on a thread of the worker daemon's own, about once a minute, never in
    the way of a delivery.  Each feature keeps when it last did its work and decides itself
    whether it is due.

    :param host: the host's view of the runtime (see :func:`delivery_succeeded`).
    :param queue: the queue (its store), opened for this thread.
    :param now: the wall-clock time of this round.
    """


@hookspec(firstresult=True)
def step_run(host: Host, vendor: VendorContext, event: VendorStep) -> dict[str, Any] | None:
    """Carry out a queued step that belongs to a built-in feature rather than to the vendor.

    A step row (``vendor_step``) is first offered to the features; the one that knows
    ``event.step`` carries it out and returns its result (the vendor's own ``vendor_step``
    is then not called).  The result may hold ``steps`` to queue next, as a vendor's may.

    :param host: the host's view of the runtime (see :func:`delivery_succeeded`).
    :param vendor: the context of the vendor the step was queued for.
    :param event: the step, its name in ``event.step`` and its data in ``event.data``.
    :return: the step's result, or None when no feature knows the step.
    :raises spamfilter_plugin.errors.VendorError: as a vendor's step does (temporary
        failures are retried, ``VendorWaiting`` waits).

    Stops at first non-None result.
    """
