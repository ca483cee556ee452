"""A minimal page host for browser tests: it serves a runtime's settings fragments as the
panel pages do (a whole page around them, the stylesheet, the panel's CSRF token) and hands
each submitted form to the vendor, then shows the page again with the outcome.

URLs: ``/admin/`` and ``/<scope>/<target>/``; a fragment's form posts to
``<vendor>/<name>`` relative to its page.  This is test scaffolding, not the console.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, unquote

from spamfilter_plugin.events import Domain, Mailbox
from spamfilter_plugin.templating import stylesheet

CSRF = "page-host-csrf-token"


class PageHost:
    def __init__(self, runtime) -> None:
        self.runtime = runtime

    def __call__(self, environ, start_response):
        parts = [unquote(p) for p in environ.get("PATH_INFO", "/").strip("/").split("/") if p]
        scope = parts[0] if parts else "admin"
        target = None
        if scope == "domain":
            target = Domain(parts[1])
        elif scope == "mailbox":
            target = Mailbox(parts[1])
        rest = parts[1 if scope == "admin" else 2 :]
        result = None
        if environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            form = dict(
                parse_qsl(environ["wsgi.input"].read(size).decode(), keep_blank_values=True)
            )
            if form.get("csrf_token") != CSRF:
                start_response("403 Forbidden", [("Content-Type", "text/plain")])
                return [b"bad CSRF token"]
            result = self.runtime.settings_submitted(rest[0], scope, target, form)
        body = self.page(scope, target, result)
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body.encode()]

    def page(self, scope, target, result) -> str:
        fragments = self.runtime.settings_fragments(scope, target, CSRF)
        shown = ""
        if result is not None:
            kind = "sfp-ok" if result.ok else "sfp-error"
            errors = "".join(
                f"<li data-field='{html.escape(k)}'>{html.escape(k)}: {html.escape(v)}</li>"
                for k, v in result.errors.items()
            )
            shown = (
                f'<p class="sfp-message {kind}" role="status">{html.escape(result.message)}</p>'
                + (f"<ul class='sfp-errors'>{errors}</ul>" if errors else "")
            )
        inner = "\n".join(str(f.html) for f in fragments)
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>settings</title>"
            f"<style>{stylesheet()}</style></head><body>{shown}{inner}</body></html>"
        )
