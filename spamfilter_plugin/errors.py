"""The error tree.  Every error the package raises derives from :class:`SpamFilterError`.

Messages say what went wrong *and how to fix it*; they never contain secrets
(every message passes through :func:`~spamfilter_plugin.redaction.redact`).

``permanent`` tells the delivery machinery whether trying again later can help:
authentication failures and rejected data are permanent, outages and
throttling are not.
"""

from __future__ import annotations

from .redaction import redact

#: How much of a response body an error keeps (redacted) for diagnosis.
BODY_KEEP = 4096


class SpamFilterError(Exception):
    """Base class of every error raised by spamfilter-plugin."""

    permanent = True

    def __init__(self, message: str) -> None:
        self.message = redact(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ConfigError(SpamFilterError):
    """The configuration file is missing, unreadable or invalid.

    ``location`` names the table and key (``[vendors.spamport] password``).
    """

    def __init__(self, message: str, *, location: str | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class InvalidInput(SpamFilterError, ValueError):
    """A value given at the edge (event, CLI, form) is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class QueueError(SpamFilterError):
    """The queue database cannot be used (damaged, unreadable, disk full); the message names
    the file and the fix.  ``temporary`` is True when waiting can help (a full disk, a lock)."""

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        self.temporary = temporary
        super().__init__(message)


class PanelError(SpamFilterError):
    """The panel could not do what was asked of it (read or change a zone, list domains);
    the message names the command or call and what the panel answered.  ``temporary`` is
    True when trying again can help (a zone changed meanwhile, the panel busy or down)."""

    def __init__(self, message: str, *, temporary: bool = True) -> None:
        self.permanent = not temporary
        super().__init__(message)


class PluginError(SpamFilterError):
    """A vendor plugin is missing, broken or implements a hook that does not exist."""


class VendorError(SpamFilterError):
    """A vendor API call failed.

    :param vendor: the vendor's name (``spamport``).
    :param message: what failed and what to do about it.
    :param status: the HTTP status, or None when no response arrived.
    :param body: the response body, kept (redacted, truncated) for diagnosis.
    :param retry: whether the HTTP layer may repeat the call at once: True, False, or None
        (the default) to let it decide from the kind of error and the HTTP status.  This is
        about the call in hand; whether a later delivery can help is :attr:`permanent`.
    """

    retry: bool | None = None

    def __init__(
        self,
        vendor: str,
        message: str,
        *,
        status: int | None = None,
        body: str | bytes | None = None,
        retry: bool | None = None,
    ) -> None:
        self.vendor = vendor
        self.status = status
        if retry is not None:
            self.retry = retry
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        self.body = redact(body[:BODY_KEEP]) if body is not None else None
        super().__init__(f"{vendor}: {message}")


class VendorAuthError(VendorError):
    """The vendor refused our credentials (or blocked us).  Never retried:
    repeated bad logins get the server's IP blocked at some vendors."""


class VendorForbidden(VendorError):
    """The credentials are good, but this account may not do this (a domain admin asking
    for another domain, a user for another user).  Permanent, and unlike refused
    credentials it suspends nothing: the message names the account and the scope."""


class VendorNotFound(VendorError):
    """The object (domain, mailbox, entry) does not exist at the vendor."""


class VendorConflict(VendorError):
    """The object already exists at the vendor."""


class VendorRejected(VendorError):
    """The vendor refused the request's data (invalid value, licence exhausted, ...)."""


class VendorUnclear(VendorRejected):
    """A refusal whose meaning the answer does not say: no machine-readable code, or a
    message the vendor's document does not list.  It stands as a refusal, unless the caller
    settles it by reading what the vendor holds (:mod:`~spamfilter_plugin.settle`): never
    by matching the words."""


class VendorResponseError(VendorError):
    """The vendor answered something we cannot understand (not the documented
    envelope, malformed JSON or XML, a hostile XML document, an unexpected redirect)."""


class ResponseTooLarge(VendorResponseError):
    """The response body exceeded the configured size cap."""


class VendorUnavailable(VendorError):
    """The vendor could not be reached or answered with a temporary failure.
    Trying again later can succeed."""

    permanent = False


class VendorTimeout(VendorUnavailable):
    """No (complete) answer arrived within the timeouts or the overall deadline."""

    retry = True


class VendorTLSError(VendorUnavailable):
    """TLS verification failed.  Not retried at once: it needs an admin (``ca_bundle``)
    or the vendor to fix the certificate; a later delivery may succeed."""

    retry = False


class VendorRateLimited(VendorUnavailable):
    """The vendor asked us to slow down; ``retry_after`` is its hint in seconds."""

    retry = True

    def __init__(
        self, vendor: str, message: str, *, retry_after: float | None = None, **kw
    ) -> None:
        self.retry_after = retry_after
        super().__init__(vendor, message, **kw)


class VendorWaiting(VendorError):
    """The vendor is waiting for something outside it to happen first (a DNS record to
    become visible).  Raised by a queued step (:class:`~spamfilter_plugin.events.VendorStep`):
    the worker tries the step again with its usual backoff, but no later than
    ``retry_within`` seconds when given, and does not count these tries against
    ``general.max_attempts``; the step itself decides when to stop waiting."""

    permanent = False
    retry = False

    def __init__(
        self, vendor: str, message: str, *, retry_within: float | None = None, **kw
    ) -> None:
        self.retry_within = retry_within
        super().__init__(vendor, message, **kw)


class VendorHeld(VendorError):
    """The call was not sent because the vendor is held back: suspended after refused
    credentials, or busy proving new credentials in another process.  Nothing reached the
    vendor; the event waits (it does not count as an attempt)."""

    permanent = False
    retry = False


class VendorSuspended(VendorHeld):
    """Calls to the vendor are suspended after refused credentials, until an admin's
    ``spamfilter check`` succeeds."""


class VendorBusy(VendorHeld):
    """Another delivery holds the vendor while its credentials are not yet proven."""


class VendorPaced(VendorHeld):
    """The vendor's request rate allows no further request within this delivery's time; the
    event waits ``retry_after`` seconds, when a request may be sent again (not an attempt)."""

    def __init__(self, vendor: str, message: str, *, retry_after: float, **kw) -> None:
        self.retry_after = retry_after
        super().__init__(vendor, message, **kw)


class VendorSkipped(VendorError):
    """The event was not delivered on purpose: doing it would undo what another server set
    at the vendor since (a deletion of a domain whose mail now goes to another server's
    destination).  The row ends ``skipped`` with this reason; it is not a failure."""

    permanent = True
    retry = False
