"""Secrets and their redaction.

A :class:`Secret` wraps a password, token or key so that ``repr()``, ``str()``,
f-strings and logging never show it; code that must send it calls
:meth:`Secret.reveal`.  Every secret value that the process learns is also
remembered by :func:`register`, and :func:`redact` removes all of them (and the
values of well-known secret parameter names) from any text: log records,
exception messages, stored response bodies and CLI output all pass through it.
"""

from __future__ import annotations

import re
from _thread import allocate_lock

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the hook path
if TYPE_CHECKING:
    import logging

MASK = "***"

# Parameter names whose values are always hidden, whatever the value (any vendor's).  A
# vendor adds the names of its own secret-bearing parameters and headers with
# register_name(); the host names no vendor.
SECRET_NAMES = ("password", "passwd", "token", "secret", "api_key")
SECRET_HEADERS = ("authorization",)

_names: set[str] = set(SECRET_NAMES)
_headers: set[str] = set(SECRET_HEADERS)
_name_patterns: tuple[re.Pattern[str], ...] | None = None
#: every name the patterns look for, replaced whole (never changed in place) under the lock
_watched: tuple[str, ...] = (*SECRET_NAMES, *SECRET_HEADERS)


def register_name(name: str, *, header: bool = False) -> None:
    """Hide the value of every parameter or JSON key called *name* (any case), everywhere
    :func:`redact` looks; with ``header=True``, also of the HTTP header *name*.

    A vendor calls this for the names its API uses for secrets (a signature header, a
    ``newpass`` field), so its values stay out of logs, errors and request logs even when
    they are not known in advance."""
    global _name_patterns, _watched
    with _lock:
        _names.add(name.lower())
        if header:
            _headers.add(name.lower())
        _watched = tuple(_names | _headers)
        _name_patterns = None


def _patterns() -> tuple[re.Pattern[str], ...]:
    """The name-based patterns, compiled on first use (not on the panel-hook path's import)."""
    global _name_patterns
    patterns = _name_patterns
    if patterns is not None:
        return patterns
    with _lock:
        names = "|".join(re.escape(n) for n in sorted(_names))
        headers = "|".join(re.escape(n) for n in sorted(_headers))
        patterns = (
            # form / query encoded: password=abc&...
            re.compile(rf"(?i)(\b(?:{names})=)([^&\s]+)"),
            # JSON: "password": "abc"
            re.compile(rf'(?i)("(?:{names})"\s*:\s*")((?:[^"\\]|\\.)*)(")'),
            # headers: Authorization: Bearer abc
            re.compile(rf"(?i)(\b(?:{headers}):\s*)(.+?)(?=$|[\r\n\"',}}])", re.M),
        )
        _name_patterns = patterns
    return patterns


_lock = allocate_lock()
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None

# Secrets shorter than this are not substituted as bare strings (a one-letter
# password would otherwise mangle every message); their named occurrences are
# still hidden by the patterns above.
MIN_SUBSTITUTE_LENGTH = 4


class Secret:
    """A secret string that does not show itself.

    >>> s = Secret("hunter2")
    >>> f"{s}", repr(s)
    ('***', "Secret('***')")
    >>> s.reveal()
    'hunter2'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("a Secret holds a string")
        self._value = value
        register(value)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict) -> Secret:
        return self

    def __reduce__(self):  # pickling would leak the value into queues or caches
        raise TypeError("a Secret cannot be pickled; store it encrypted instead")


def register(value: str) -> None:
    """Remember *value* as a secret so that :func:`redact` hides it everywhere."""
    global _pattern
    if not value:
        return
    from urllib.parse import quote, quote_plus

    forms = {value, quote(value, safe=""), quote_plus(value)}
    forms = {f for f in forms if len(f) >= MIN_SUBSTITUTE_LENGTH}
    with _lock:
        if forms <= _known:
            return
        _known.update(forms)
        ordered = sorted(_known, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(f) for f in ordered))


def _may_name_a_secret(text: str) -> bool:
    """False only when no secret name (:func:`register_name`) can occur in *text* as the
    name-based patterns match it (case-insensitively): then they need not run, nor be
    compiled, which is most of what a panel hook's one log line would cost.  Casefolding
    covers what the patterns' case-insensitive match accepts, the dotless i, U+0131 (which
    matches ``i``) aside; a name that is not plain ASCII always runs them."""
    names = _watched
    if not all(name.isascii() for name in names):
        return True
    folded = text.casefold().replace("\u0131", "i")
    return any(name in folded for name in names)


def redact(text: object) -> str:
    """Return ``str(text)`` with every known secret and named secret value masked."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = str(text)
    pattern = _pattern
    if pattern is not None:
        out = pattern.sub(MASK, out)
    if not _may_name_a_secret(out):
        return out
    for i, rx in enumerate(_patterns()):
        if i == 1:
            out = rx.sub(lambda m: m.group(1) + MASK + m.group(3), out)
        else:
            out = rx.sub(lambda m: m.group(1) + MASK, out)
    return out


def reveal(value: object) -> object:
    """Unwrap a :class:`Secret`; return anything else unchanged."""
    return value.reveal() if isinstance(value, Secret) else value


class RedactingFilter:
    """Logging filter that renders each record's message and masks secrets in it.

    Attached to every logger handed out by :func:`get_logger`, and to the CLI's
    handlers, so records are cleaned before any handler formats them.  (Logging takes any
    object with a ``filter`` method; not subclassing ``logging.Filter`` keeps ``logging``
    out of the imports of the light paths that only redact.)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not hide the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback once, redacted, and keep only the text.
            import logging

            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


_filter = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """Return the logger *name* with the redacting filter attached.

    Logger filters apply only to records created on that very logger, so every
    module of the package (and every vendor plugin) takes its logger from here.
    """
    import logging

    logger = logging.getLogger(name)
    if _filter not in logger.filters:
        logger.addFilter(_filter)
    return logger


def redacting_handler(handler: logging.Handler) -> logging.Handler:
    """Attach the redacting filter to *handler* too (for records of other libraries)."""
    if _filter not in handler.filters:
        handler.addFilter(_filter)
    return handler
