"""Rendering of settings fragments.

One Jinja environment for the whole process: autoescape on for ``.j2`` files
(``select_autoescape(default=True)`` alone would not escape them), undefined
names are errors, and templates are loaded from the installed
``spamfilter_plugin.templates`` package (``templates/<vendor>/<name>.html.j2``).
Fragments are body-only HTML with no inline scripts; their forms carry the
panel's CSRF token through the ``form`` macro of ``_macros.html.j2``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources

import idna
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)
from markupsafe import Markup, escape
from marshmallow import fields as mfields
from marshmallow import validate as mvalidate

from .errors import InvalidInput

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
#: the CSS class prefix every fragment element uses, so panel styles cannot clash
CSS_PREFIX = "sfp-"


@dataclass(frozen=True)
class Fragment:
    """A rendered piece of a settings page."""

    vendor: str
    name: str
    title: str
    html: Markup


@dataclass(frozen=True)
class SettingsResult:
    """The outcome of a submitted settings form, in plain words."""

    ok: bool
    message: str
    changed: tuple[str, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)
    #: a URL the panel should send the browser to (a vendor's one-time login link)
    redirect: str | None = None
    #: the values the change replaced, by form field, where the vendor read them first (the
    #: audit log's old values)
    before: dict[str, object] = field(default_factory=dict)

    @classmethod
    def invalid(cls, messages: dict | list | str) -> SettingsResult:
        """The answer to a form that failed validation (marshmallow's ``exc.messages``): one
        message per field."""
        if not isinstance(messages, dict):  # a schema-level message names no field
            messages = {"_schema": messages}
        errors = {k: (v[0] if isinstance(v, list) else str(v)) for k, v in messages.items()}
        return cls(False, "Please correct the highlighted fields.", errors=errors)


@dataclass
class Submitted:
    """A form of *vendor* that came back refused: what the user typed (*values*) and the
    message of each field that was wrong (*errors*, by field name).  While it is current
    (:func:`submitted`), that vendor's fragments render each field with the typed value and
    its error beside it, and note the field's label here (:meth:`problems`)."""

    vendor: str
    values: Mapping[str, str]
    errors: Mapping[str, str]
    #: the label and element id of each field in error, as it was rendered
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)

    def problems(self) -> list[tuple[str | None, str]]:
        """Each error as ``(field id or None, "Label: message")``, for a summary that links
        to the fields; an error of no shown field is named by its key in words."""
        out: list[tuple[str | None, str]] = []
        for key, message in self.errors.items():
            if key in self.labels:
                label, element = self.labels[key]
                out.append((element, f"{label}: {message}"))
            elif key == "_schema":
                out.append((None, message))
            else:
                out.append((None, f"{key.replace('_', ' ').capitalize()}: {message}"))
        return out


_submitted: ContextVar[Submitted | None] = ContextVar("sfp_submitted", default=None)
_rendering: ContextVar[str | None] = ContextVar("sfp_rendering", default=None)
_ids: ContextVar[dict[str, int] | None] = ContextVar("sfp_ids", default=None)


@contextmanager
def one_page() -> Iterator[None]:
    """Fragments rendered within the block share a page: each field's element id is unique
    on it (``sfp-greylist``, then ``sfp-greylist-2`` for the next form with that field)."""
    token = _ids.set({})
    try:
        yield
    finally:
        _ids.reset(token)


def _field_id(name: str) -> str:
    used = _ids.get()
    if used is None:
        return f"sfp-{name}"
    used[name] = used.get(name, 0) + 1
    return f"sfp-{name}" if used[name] == 1 else f"sfp-{name}-{used[name]}"


@contextmanager
def submitted(
    vendor: str, values: Mapping[str, str], errors: Mapping[str, str]
) -> Iterator[Submitted]:
    """Render *vendor*'s fragments, within the block, as the refused form left them."""
    state = Submitted(vendor, values, errors)
    token = _submitted.set(state)
    try:
        yield state
    finally:
        _submitted.reset(token)


def field_state(name: str, label: str) -> dict[str, object]:
    """What a form macro needs for the field *name*: its element ``id`` (unique on the
    page), and of a refused submission ``sent`` (whether the user sent a value), ``value``
    and ``error`` (None when none)."""
    element = _field_id(name)
    state = _submitted.get()
    if state is None or state.vendor != _rendering.get():
        return {"id": element, "sent": False, "value": None, "error": None}
    error = state.errors.get(name)
    if error is not None and name not in state.labels:
        state.labels[name] = (label, element)
    return {
        "id": element,
        "sent": name in state.values,
        "value": state.values.get(name),
        "error": error,
    }


def number_bounds(schema, name: str) -> dict[str, object]:
    """The ``min``, ``max`` and ``step`` a number input gets from the field *name* of the
    marshmallow *schema* (a class or an instance): its ``Range`` validator, and the step
    its type allows (1 for an Integer, any for a Float); ``metadata`` of the field (``min``,
    ``max``, ``step``) wins, for a number kept as text.  So the browser accepts exactly
    what the schema does (a decimal where decimals are allowed)."""

    instance = schema() if isinstance(schema, type) else schema
    field_ = instance.fields[name]
    bounds: dict[str, object] = {"step": 1 if isinstance(field_, mfields.Integer) else "any"}
    for check in field_.validators:
        if isinstance(check, mvalidate.Range):
            bounds["min"], bounds["max"] = check.min, check.max
    bounds.update({k: v for k, v in field_.metadata.items() if k in ("min", "max", "step")})
    return bounds


def make_environment(*extra_loaders) -> Environment:
    """A configured environment; *extra_loaders* are searched after the package's templates
    (third-party vendors ship their own ``<vendor>/`` folders through them)."""
    loader: BaseLoader = PackageLoader("spamfilter_plugin.templates", "")
    if extra_loaders:
        loader = ChoiceLoader([loader, *extra_loaders])
    env = Environment(
        loader=loader,
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"), default_for_string=True, default=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.globals["css_prefix"] = CSS_PREFIX
    env.globals["sfp_field"] = field_state
    env.filters["sfp_time"] = lambda stamp: format_when(stamp, css="sfp-ago")
    env.filters["sfp_domain"] = shown_domain
    return env


def shown_domain(name: str) -> Markup | str:
    """A domain as people write it (``bücher.example``), its punycode form beside it when
    the two differ."""

    try:
        unicode = idna.decode(name)
    except (idna.IDNAError, UnicodeError, ValueError):
        return name
    if unicode == name:
        return name
    return Markup('{} <small class="sfp-puny">({})</small>').format(unicode, name)


def format_time(stamp: float | int | str) -> str:
    """A Unix time as ``2026-11-21 14:05 UTC`` (a page's viewers may be anywhere)."""
    try:
        when = datetime.fromtimestamp(float(stamp), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(stamp)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def relative_time(stamp: float | int | str, now: float) -> str:
    """How far *stamp* is from *now* in words: ``3 min ago``, ``in 2 h``, ``just now``."""
    try:
        delta = float(stamp) - now
    except (TypeError, ValueError):
        return ""
    seconds = abs(delta)
    if seconds < 45:
        return "just now" if delta <= 0 else "in a moment"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size or unit == "min":
            amount = f"{round(seconds / size):d} {unit}"
            return f"in {amount}" if delta > 0 else f"{amount} ago"
    return ""  # not reached


def format_when(
    stamp: float | int | str, now: float | None = None, css: str = "sfc-ago"
) -> Markup | str:
    """A time as pages show it: ``2026-11-21 14:05 UTC (3 min ago)`` in a ``<time>``
    element (the relative part in a ``<small>`` of class *css*)."""
    import time as _time

    try:
        when = datetime.fromtimestamp(float(stamp), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(stamp)
    near = relative_time(stamp, _time.time() if now is None else now)
    return Markup('<time datetime="{}">{} <small class="{}">({})</small></time>').format(
        when.strftime("%Y-%m-%dT%H:%M:%SZ"), format_time(stamp), css, near
    )


_extra_loaders: list = []


def add_template_loader(loader) -> None:
    """Let a third-party vendor plugin make its own templates findable."""
    _extra_loaders.append(loader)
    environment.cache_clear()


@lru_cache(maxsize=1)
def environment() -> Environment:
    return make_environment(*_extra_loaders)


def render_fragment(vendor: str, name: str, **context) -> Markup:
    """Render ``templates/<vendor>/<name>.html.j2`` with *context*; return safe HTML.

    Every variable the template uses must be given (undefined names raise).
    """
    for field_name, value in (("vendor", vendor), ("template", name)):
        if not _NAME.match(value):
            raise InvalidInput(
                field_name,
                f"{value!r} is not a template name (lower-case letters, digits, - and _)",
            )
    template = environment().get_template(f"{vendor}/{name}.html.j2")
    token = _rendering.set(vendor)
    ids = _ids.set({}) if _ids.get() is None else None  # a fragment alone is a page
    try:
        return Markup(template.render(vendor=vendor, **context))
    finally:
        _rendering.reset(token)
        if ids is not None:
            _ids.reset(ids)


#: the opening tag of a fragment's form, as the ``form`` macro writes it
FORM_TAG = re.compile(r'<form class="sfp-form" action="([^"]*)" method="(\w+)"([^>]*)>')


def retarget_forms(
    fragment_html: str, action_for: Callable[[str, str], tuple[str, str] | None]
) -> Markup:
    """*fragment_html* with each form sent elsewhere: ``action_for(action, method)`` gives
    the form's new action and the HTML to put first inside it (a hidden field, say), or None
    to leave that form as it is.  The rest of the opening tag (its name) is kept."""

    def swap(match: re.Match) -> str:
        found = action_for(match.group(1), match.group(2))
        if found is None:
            return match.group(0)
        action, inside = found
        method, rest = match.group(2), match.group(3)  # as the macro wrote them
        return f'<form class="sfp-form" action="{escape(action)}" method="{method}"{rest}>{inside}'

    return Markup(FORM_TAG.sub(swap, str(fragment_html)))


def stylesheet() -> str:
    """The fragments' stylesheet; every rule is scoped under ``.sfp-fragment``."""
    return resources.files("spamfilter_plugin.templates").joinpath("style.css").read_text("utf-8")
