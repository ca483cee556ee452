"""A small third-party vendor used by the host's tests: a JSON API with bearer
tokens (the emulator below) and a hookimpl module written the way an outside
plugin author would write one, through the public interface only."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import unquote

from jinja2 import FileSystemLoader
from marshmallow import Schema, ValidationError, fields, validate

from spamfilter_plugin import settle
from spamfilter_plugin.config.schema import SecretField, VendorSchema
from spamfilter_plugin.errors import VendorConflict, VendorNotFound
from spamfilter_plugin.hookspecs import hookimpl
from spamfilter_plugin.redaction import Secret
from spamfilter_plugin.sandbox.base import Emulator, Reply, Request
from spamfilter_plugin.templating import (
    Fragment,
    SettingsResult,
    add_template_loader,
    render_fragment,
)

add_template_loader(FileSystemLoader(str(Path(__file__).with_name("toy_templates"))))

TOKEN = "toy-token-S3cret!&#%+="


# ----------------------------------------------------------------- emulator


class ToyEmulator(Emulator):
    """GET /whoami, GET /domains, PUT|PATCH|GET|DELETE /domains/<name>,
    POST /passwords/<name>; bearer token.  Registered under ``spamfilter_plugin.emulators``
    as ``toy``, so ``spamfilter sandbox`` and the pytest fixtures serve it."""

    name = "toy"
    api_path = ""
    settings = ("token",)

    def __init__(self, token: str = TOKEN, **kwargs) -> None:
        self.token = token
        super().__init__(**kwargs)

    def initial_state(self) -> None:
        self.domains: dict[str, dict] = {}
        self.passwords: dict[str, str] = {}  # by domain or mailbox

    def snapshot(self) -> dict:
        return {"domains": self.domains}

    def credentials(self) -> dict:
        return {"token": self.token}

    def handle(self, req: Request) -> Reply:
        if req.headers.get("Authorization") != f"Bearer {self.token}":
            return Reply.json({"error": "bad token"}, 401)
        body = req.json() if req.body else {}
        parts = [unquote(p) for p in req.path.strip("/").split("/")]
        if parts == ["whoami"] and req.method == "GET":
            return Reply.json({"account": "acme"})
        if parts == ["domains"] and req.method == "GET":
            return Reply.json({"domains": sorted(self.domains)})
        if len(parts) == 2 and parts[0] == "domains":
            return self._domain(req.method, parts[1], body)
        if len(parts) == 2 and parts[0] == "passwords" and req.method == "POST":
            password = body.get("password") or secrets.token_urlsafe(9)
            self.passwords[parts[1]] = password
            return Reply.json({"password": password})
        return Reply.json({"error": "no such endpoint"}, 404)

    def _domain(self, method: str, name: str, body: dict) -> Reply:
        if method == "PUT":
            if name in self.domains:
                return Reply.json({"error": f"{name} exists"}, 409)
            self.domains[name] = {"destination": body.get("destination"), "strict": False}
            return Reply.json({"txt": f"toy-verify-{len(name)}"}, 201)
        if name not in self.domains:
            return Reply.json({"error": f"{name} not found"}, 404)
        if method == "PATCH":
            self.domains[name].update(body)
            return Reply.json(self.domains[name])
        if method == "DELETE":
            del self.domains[name]
            return Reply(204)
        return Reply.json(self.domains[name])


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


def _route_of(vendor):
    def route_of(name):
        try:
            return _client(vendor).request("GET", f"domains/{name}").json()["destination"]
        except VendorNotFound:
            return settle.NOT_HELD

    return route_of


@hookimpl
def domain_created(vendor, event):
    destination = event.destination or vendor.general.mail_host
    answers = []

    def update():
        _client(vendor).request(
            "PATCH", f"domains/{event.domain}", json={"destination": destination}
        )

    def create():
        path = f"domains/{event.domain}"
        answers.append(_client(vendor).request("PUT", path, json={"destination": destination}))

    try:
        how = settle.created(
            "toy",
            event.domain.name,
            create,
            route_of=_route_of(vendor),
            wanted=destination,
            update=update,
        )
    except VendorConflict:
        update()
        how = "updated"
    if how != "added":
        return {"message": "already present; destination brought up to date"}
    answer = answers[0].json()
    name = f"_toy.{event.domain}"
    published = vendor.panel.publish_dns_record(event.domain, "TXT", name, answer["txt"])
    return {
        "dns_records": [
            {"type": "TXT", "name": name, "value": answer["txt"], "published": published}
        ]
    }


@hookimpl
def domain_deleted(vendor, event):
    absent = []

    def delete():
        try:
            _client(vendor).request("DELETE", f"domains/{event.domain}")
        except VendorNotFound:
            absent.append(True)

    how = settle.deleted("toy", event.domain.name, delete, route_of=_route_of(vendor))
    return {"message": "was already absent"} if absent or how == "gone" else None


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
