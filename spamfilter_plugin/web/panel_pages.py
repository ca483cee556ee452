"""Settings pages inside the panels: what ``spamfilter ui render``, ``ui submit`` and
``ui page`` do for a panel user the panel has authenticated.

A panel's page (a cPanel live page, a WHM CGI, a DirectAdmin plugin page, a Plesk view, a
Webmin module) passes the user it logged in; :class:`~.access.Records` limits them to what
the panel's records give them.  Forms carry a token signed with the console's key for that
user (or the panel's own token, which the panel then checks), and can be pointed at the
panel page itself (``form_url``): each form then posts there, naming its vendor and form in
``sfp_form``.
"""

from __future__ import annotations

import html
import json
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, replace
from urllib.parse import parse_qsl, urlencode

from itsdangerous import BadSignature, TimestampSigner
from markupsafe import Markup

from ..errors import InvalidInput
from ..manager import Runtime
from ..queue import queue_of
from ..templating import (
    Fragment,
    SettingsResult,
    Submitted,
    retarget_forms,
    stylesheet,
    submitted,
)
from .access import Records, Refused, Viewer, console_key, panel_viewer
from .settings import SettingsService
from .status import shown_name

TOKEN_HOURS = 8


class PanelPages:
    """The pages of one config (its runtime and panel) for panel users."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.adapter = runtime.panel_adapter
        self.state_dir = runtime.config.general.state_dir
        self._queue = queue_of(runtime.config)
        self.records = Records(self.adapter, self._queue.targets)
        self.settings = SettingsService(
            runtime,
            self.records,
            self._queue.suspensions,
            audit=self._queue,
            origin=f"panel {self.adapter.name}" if self.adapter is not None else "panel",
        )

    def close(self) -> None:
        self._queue.close()

    def viewer(self, user: str) -> Viewer:
        """The panel user *user*; a mailbox login must be a mailbox the panel has."""
        viewer = panel_viewer(self.adapter, user)
        if viewer.role == "mailbox":
            domain = viewer.name.rsplit("@", 1)[1]
            if viewer.name not in self.records.mailboxes_of(domain):
                raise Refused(f"user: {viewer.name} is not a mailbox the panel has")
        return viewer

    # -- the form token --------------------------------------------------------------------

    def _signer(self):

        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return TimestampSigner(console_key(self.state_dir), salt="spamfilter-panel-form")

    def token_for(self, viewer: Viewer) -> str:
        return self._signer().sign(f"{viewer.role}:{viewer.name}").decode()

    def token_ok(self, viewer: Viewer, token: str) -> bool:

        try:
            value = self._signer().unsign(token, max_age=TOKEN_HOURS * 3600).decode()
        except (BadSignature, UnicodeDecodeError):
            return False
        return value == f"{viewer.role}:{viewer.name}"

    # -- render and submit, through the settings service the console uses too ------------

    def render(
        self,
        viewer: Viewer,
        scope: str,
        target: str | None,
        *,
        vendor: str | None = None,
        csrf_token: str | None = None,
        form_url: str | None = None,
        query: dict | None = None,
    ) -> list[Fragment]:
        """The fragments *viewer* may see for *scope* and *target*; Refused otherwise."""
        token = csrf_token or self.token_for(viewer)
        _, fragments = self.settings.fragments(
            viewer, scope, target, csrf_token=token, query=query, vendor=vendor
        )
        if form_url is not None:
            fragments = [replace(f, html=_pointed(f.html, form_url)) for f in fragments]
        return fragments

    def submit(
        self,
        viewer: Viewer,
        scope: str,
        target: str | None,
        form: dict[str, str],
        *,
        vendor: str | None = None,
        csrf_checked: bool = False,
    ) -> SettingsResult:
        """Apply a submitted form; a missing or wrong token, another user's target or an
        unknown vendor change nothing."""
        self.settings.check(viewer, scope, target)
        form = dict(form)
        vendor = vendor or form.pop("sfp_form", "").split("/", 1)[0]
        form.pop("sfp_form", None)
        if vendor not in self.runtime.vendors:
            raise InvalidInput(
                "vendor",
                f"{vendor!r} is not enabled; give --vendor or sfp_form "
                f"({', '.join(self.runtime.vendors)})",
            )
        if not csrf_checked and not self.token_ok(viewer, form.get("csrf_token", "")):
            raise Refused(
                "csrf_token: missing, expired or not this user's; nothing was changed. Open "
                "the page again and resend the form"
            )
        return self.settings.submit(viewer, scope, target, vendor, form)[1]


def _pointed(fragment_html: str, form_url: str) -> Markup:
    """The fragment's forms posted to the panel page *form_url*, each naming its own
    ``vendor/form`` in a hidden ``sfp_form`` field."""

    def point(action: str, method: str) -> tuple[str, str] | None:
        if method != "post":
            return None
        hidden = f'<input type="hidden" name="sfp_form" value="{html.escape(action)}">'
        return form_url, hidden

    return retarget_forms(fragment_html, point)


def read_form(text: str) -> dict[str, str]:
    """A submitted form from JSON (an object of strings) or urlencoded text; of a repeated
    field (a checkbox's hidden 0 and its 1) the last value wins.  InvalidInput otherwise."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput("form", f"not valid JSON ({exc.msg} at {exc.pos})") from None
        if not all(isinstance(v, (str, int, float, bool)) for v in data.values()):
            raise InvalidInput("form", "every value must be a string")
        return {str(k): str(v) for k, v in data.items()}
    return dict(parse_qsl(text, keep_blank_values=True))


def result_json(result: SettingsResult) -> dict:
    doc = asdict(result)
    doc["changed"] = list(result.changed)
    doc.pop("before")  # what the change replaced is for the audit log, not the page
    return doc


# -- a whole panel page (CGI style) ----------------------------------------------------------


def page(
    pages: PanelPages,
    user: str,
    level: str,
    *,
    method: str,
    query_string: str,
    body: str,
    page_url: str = "",
) -> str:
    """One request to a panel page: the panel user's domains, or a domain's or mailbox's
    settings (``?scope=domain&target=...``), a submitted form applied first.  Returns the
    HTML to put into the panel's page; refusals are shown, never raised."""
    try:
        viewer = pages.viewer(user)
        if level == "admin" and not viewer.is_admin:
            raise Refused(f"{viewer.name} is not the panel's admin")
    except Refused as exc:
        return _wrap(f'<p class="sfp-message sfp-error" role="alert">{html.escape(str(exc))}</p>')
    query = dict(parse_qsl(query_string, keep_blank_values=True))
    scope = query.get("scope") or ("admin" if viewer.is_admin else "")
    target = query.get("target") or None
    if viewer.role == "mailbox" and not scope:
        scope, target = "mailbox", viewer.name
    here = page_url + "?" + urlencode({"scope": scope, "target": target or ""})
    out = []
    try:
        if scope not in ("admin", "domain", "mailbox"):
            return _wrap(_domain_list(pages, viewer, page_url))
        result = None
        sent: AbstractContextManager[Submitted | None] = nullcontext()
        if method.upper() == "POST":
            form = read_form(body)
            result = pages.submit(viewer, scope, target, form)
            if not result.ok:  # the forms again as the user left them, errors beside fields
                sent = submitted(form.get("sfp_form", "").split("/")[0], form, result.errors)
        with sent as state:
            fragments = pages.render(viewer, scope, target, form_url=here, query=query)
        if result is not None:
            out.append(_said(result, state.problems() if state is not None else []))
        notice = pages.settings.suspension_notice(viewer, scope, target)
        if notice is not None:
            out.insert(
                0,
                f'<section class="sfp-fragment"><p class="sfp-message sfp-suspended" '
                f'role="status">{html.escape(notice)}</p></section>',
            )
    except (Refused, InvalidInput) as exc:
        text = exc.message if isinstance(exc, InvalidInput) else str(exc)
        return _wrap(f'<p class="sfp-message sfp-error" role="alert">{html.escape(text)}</p>')
    out += [str(f.html) for f in fragments] or ['<p class="sfp-help">No settings here.</p>']
    return _wrap("\n".join(out))


def _said(result: SettingsResult, problems: list[tuple[str | None, str]]) -> str:
    """What a submitted form did; refused, each error too, linked to its field."""
    items = "".join(
        f'<li><a href="#{html.escape(id_)}">{html.escape(text)}</a></li>'
        if id_
        else f"<li>{html.escape(text)}</li>"
        for id_, text in problems
    )
    kind, role = ("sfp-ok", "status") if result.ok else ("sfp-error", "alert")
    return (
        f'<div class="sfp-message {kind}" role="{role}"><p>{html.escape(result.message)}</p>'
        + (f"<ul class='sfp-errors'>{items}</ul>" if items else "")
        + "</div>"
    )


def _domain_list(pages: PanelPages, viewer: Viewer, page_url: str) -> str:

    items = []
    for domain in pages.records.domains_for(viewer):
        link = page_url + "?" + urlencode({"scope": "domain", "target": domain})
        items.append(
            f'<li><a href="{html.escape(link)}">{html.escape(shown_name(domain))}</a></li>'
        )
    body = "".join(items) or "<li>No domains.</li>"
    return (
        '<section class="sfp-fragment"><h3 class="sfp-title">Your domains</h3>'
        f'<ul class="sfp-list">{body}</ul></section>'
    )


def _wrap(inner: str) -> str:
    return f"<style>{stylesheet()}</style>\n<div class='sfp-page sfp-ui'>{inner}</div>\n"
