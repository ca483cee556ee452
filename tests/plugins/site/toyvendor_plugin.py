"""A small third-party vendor used by the host's tests: a JSON API with bearer
tokens (the emulator below) and a hookimpl module written the way an outside
plugin author would write one, through the public interface only."""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path
from urllib.parse import unquote

from jinja2 import FileSystemLoader
from marshmallow import Schema, ValidationError, fields, validate

from spamfilter_plugin.config import SecretField, VendorSchema
from spamfilter_plugin.errors import VendorConflict, VendorNotFound
from spamfilter_plugin.hookspecs import hookimpl
from spamfilter_plugin.redaction import Secret
from spamfilter_plugin.templating import (
    Fragment,
    SettingsResult,
    add_template_loader,
    render_fragment,
)

add_template_loader(FileSystemLoader(str(Path(__file__).with_name("toy_templates"))))

TOKEN = "toy-token-S3cret!&#%+="


# ----------------------------------------------------------------- emulator


class ToyEmulator:
    """WSGI app: GET /whoami, GET /domains, PUT|PATCH|DELETE /domains/<name>,
    POST /passwords/<name>."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.domains: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        with self.lock:
            self.requests.append((method, path))
        if environ.get("HTTP_AUTHORIZATION") != f"Bearer {self.token}":
            return self._send(start_response, 401, {"error": "bad token"})
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size) or b"{}") if size else {}
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["whoami"] and method == "GET":
            return self._send(start_response, 200, {"account": "acme"})
        if parts == ["domains"] and method == "GET":
            return self._send(start_response, 200, {"domains": sorted(self.domains)})
        if len(parts) == 2 and parts[0] == "domains":
            name = parts[1]
            with self.lock:
                if method == "PUT":
                    if name in self.domains:
                        return self._send(start_response, 409, {"error": f"{name} exists"})
                    self.domains[name] = {"destination": body.get("destination"), "strict": False}
                    return self._send(start_response, 201, {"txt": f"toy-verify-{len(name)}"})
                if name not in self.domains:
                    return self._send(start_response, 404, {"error": f"{name} not found"})
                if method == "PATCH":
                    self.domains[name].update(body)
                    return self._send(start_response, 200, self.domains[name])
                if method == "DELETE":
                    del self.domains[name]
                    return self._send(start_response, 204, None)
                if method == "GET":
                    return self._send(start_response, 200, self.domains[name])
        if len(parts) == 2 and parts[0] == "passwords" and method == "POST":
            return self._send(
                start_response, 200, {"password": body.get("password") or secrets.token_urlsafe(9)}
            )
        return self._send(start_response, 404, {"error": "no such endpoint"})

    @staticmethod
    def _send(start_response, status, doc):
        body = b"" if doc is None else json.dumps(doc).encode()
        reason = {
            200: "OK",
            201: "Created",
            204: "No Content",
            401: "Unauthorized",
            404: "Not Found",
            409: "Conflict",
        }[status]
        start_response(
            f"{status} {reason}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


# ----------------------------------------------------------------- plugin


class ToySchema(VendorSchema):
    api_url = fields.Url(schemes={"http", "https"}, require_tld=False, required=True)
    token = SecretField(required=True)
    strict_default = fields.Boolean(load_default=False)


class DomainForm(Schema):
    strict = fields.Boolean(required=True)
    destination = fields.String(validate=validate.Length(min=1))


def _client(vendor):
    def sign(headers):
        headers["Authorization"] = f"Bearer {vendor.config['token'].reveal()}"

    return vendor.cached("http", lambda: vendor.http(before_send=sign))


@hookimpl
def vendor_config_schema():
    return ToySchema


@hookimpl
def vendor_check(vendor):
    account = _client(vendor).request("GET", "whoami").json()["account"]
    return f"authenticated as {account}"


@hookimpl
def domain_created(vendor, event):
    destination = event.destination or vendor.general.mail_host
    try:
        answer = (
            _client(vendor)
            .request("PUT", f"domains/{event.domain}", json={"destination": destination})
            .json()
        )
    except VendorConflict:
        _client(vendor).request(
            "PATCH", f"domains/{event.domain}", json={"destination": destination}
        )
        return {"message": "already present; destination brought up to date"}
    name = f"_toy.{event.domain}"
    published = vendor.panel.publish_dns_record(event.domain, "TXT", name, answer["txt"])
    return {
        "dns_records": [
            {"type": "TXT", "name": name, "value": answer["txt"], "published": published}
        ]
    }


@hookimpl
def domain_deleted(vendor, event):
    try:
        _client(vendor).request("DELETE", f"domains/{event.domain}")
    except VendorNotFound:
        return {"message": "was already absent"}


@hookimpl
def domain_updated(vendor, event):
    _client(vendor).request(
        "PATCH", f"domains/{event.domain}", json={"destination": event.destination}
    )


@hookimpl
def mailbox_added(event):
    return None  # toy filters per domain


@hookimpl
def mailbox_deleted(event):
    return None


@hookimpl
def password_reset(vendor, event):
    payload = {"password": event.password.reveal()} if event.password else {}
    answer = _client(vendor).request("POST", f"passwords/{event.target}", json=payload).json()
    return {"password": Secret(answer["password"])}


@hookimpl
def inventory_domains(vendor):
    return _client(vendor).request("GET", "domains").json()["domains"]


@hookimpl
def settings_fragments(vendor, scope, target, csrf_token):
    if scope == "admin":
        domains = inventory_domains(vendor)
        return Fragment(
            "toy",
            "admin",
            "Toy domains",
            render_fragment("toy", "admin", domains=domains, csrf_token=csrf_token),
        )
    if scope == "domain":
        info = (
            _client(vendor).request("GET", f"domains/{target}").json()
            if target.name in inventory_domains(vendor)
            else {}
        )
        return Fragment(
            "toy",
            "domain",
            f"Toy filter for {target.unicode_name}",
            render_fragment("toy", "domain", domain=target, info=info, csrf_token=csrf_token),
        )
    return None


@hookimpl
def settings_submitted(vendor, scope, target, form):
    try:
        data = DomainForm().load(form)
    except ValidationError as exc:
        return SettingsResult(
            False, "Please correct the form.", errors={k: v[0] for k, v in exc.messages.items()}
        )
    _client(vendor).request("PATCH", f"domains/{target}", json=data)
    return SettingsResult(True, "Saved.", changed=tuple(sorted(data)))
