"""Tornevall SpamAssassin: lifecycle policy, config schema and the mailbox and admin pages.

Tornevall filters per mailbox (the key is the e-mail address) for mail accounts its own
mail service hosts.  A new mailbox gets the configured default preferences (only those
that differ from what it has); a password reset is checked with verifyAccount, so the
account is known to be valid before it is configured, and the outcome (never the
password) is kept in the vendor's state file.  Deletions change nothing at Tornevall
unless ``clear_on_delete`` is set.
"""

from __future__ import annotations

import time

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from spamfilter_plugin import suspension
from spamfilter_plugin.config.schema import (
    SecretField,
    VendorSchema,
    checked_by,
    email_or_empty,
    https_url,
)
from spamfilter_plugin.errors import VendorNotFound, VendorRejected
from spamfilter_plugin.events import normalise_domain
from spamfilter_plugin.hookspecs import hookimpl
from spamfilter_plugin.templating import Fragment, SettingsResult, render_fragment
from spamfilter_plugin.vendors.tornevall import (
    AUTH_SCHEMES,
    DEFAULT_URL,
    PREFERENCES,
    STRICT,
    VENDOR,
    SpamOptions,
    TornevallClient,
    preference_value,
    sender_mask,
)

_FREE_TEXT_MAX = 200

#: each SpamAssassin preference in plain words: its label, and what it does (ours; the
#: vendor's own descriptions are the SpamAssassin manual's, written for mail admins).  A
#: preference not named here is shown by its key, with the vendor's description.
LABELS: dict[str, tuple[str, str]] = {
    "required_hits": (
        "Spam score threshold",
        "Mail that scores this much or more is marked as spam. 5 is usual; lower catches more "
        "spam, and more good mail with it.",
    ),
    "rewrite_header": (
        "Spam subject tag",
        "Put in front of the subject of mail marked as spam: 'Subject ' and the tag, such as "
        "'Subject [SPAM]'.",
    ),
    "report_safe": (
        "How spam is delivered",
        "Marked only (headers added), or wrapped in a short report with the original attached.",
    ),
    "ok_languages": (
        "Languages you expect",
        "Two-letter codes separated by spaces (sv en), or all. Mail written in other languages "
        "scores a little higher.",
    ),
    "ok_locales": (
        "Alphabets you expect",
        "Two-letter codes separated by spaces (sv en), or all. Mail in the character sets of "
        "other regions scores a little higher.",
    ),
    "use_bayes": (
        "Learn from your mail",
        "Scores mail by how much it looks like earlier spam and earlier good mail.",
    ),
    "bayes_auto_learn": (
        "Learn automatically",
        "Clear spam and clearly good mail are learned from without anyone marking them.",
    ),
    "use_auto_whitelist": (
        "Remember each sender's usual score",
        "A sender's past mail evens out a one-off high or low score.",
    ),
    "use_pyzor": (
        "Compare with Pyzor",
        "Checks mail against a shared network's fingerprints of known spam.",
    ),
    "use_razor2": (
        "Compare with Razor",
        "Checks mail against another shared network's fingerprints of known spam.",
    ),
    "skip_rbl_checks": (
        "Skip blocklist look-ups",
        "Ticked, senders are not looked up in public DNS blocklists: faster, but less spam "
        "is caught.",
    ),
    "fold_headers": (
        "Wrap long spam headers",
        "The headers the filter adds are broken into several short lines.",
    ),
    "normalize_charset": (
        "Read every alphabet as Unicode",
        "Text in other character sets is converted before the checks run, so they can read it.",
    ),
}
#: the choices of a preference that takes one of a few values
CHOICES: dict[str, list[tuple[str, str]]] = {
    "report_safe": [
        ("0", "Mark it only (headers added)"),
        ("1", "Wrap it in a report, the original attached as a message"),
        ("2", "Wrap it in a report, the original attached as plain text"),
    ],
}


class Preferences(fields.Dict):
    """``[vendors.tornevall.preferences]``: documented, non-strict preference names, each
    with a value of its kind (``true``/``false`` or ``1``/``0`` for yes/no ones); loaded as
    the strings the API takes."""

    def _deserialize(self, value, attr, data, **kwargs):
        raw = super()._deserialize(value, attr, data, **kwargs)
        out, problems = {}, {}
        for name, given in raw.items():
            try:
                out[name] = preference_value(str(name), given)
            except ValueError as exc:
                problems[name] = [str(exc)]
        if problems:
            raise ValidationError(problems)
        return out


class TornevallSchema(VendorSchema):
    """``[vendors.tornevall]``: the application's credentials, new-mailbox preferences and
    what deletions do."""

    on_suspend = suspension.keep_only(
        "Tornevall",
        "its SpamAssassin preferences have no switch that stops filtering, and it keeps "
        "nothing per domain",
    )
    api_url = https_url(DEFAULT_URL)
    auth_scheme = fields.String(
        load_default="basic",
        validate=validate.OneOf(
            AUTH_SCHEMES, error="must be basic (the default), bearer or header"
        ),
    )
    application = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    api_key = SecretField(required=True)
    preferences = Preferences(keys=fields.String(), load_default=dict)
    clear_on_delete = fields.Boolean(load_default=False)
    check_mailbox = fields.String(load_default=None, validate=email_or_empty("check_mailbox"))

    @validates_schema
    def _application(self, data: dict, **kwargs) -> None:
        if data.get("auth_scheme", "basic") == "basic" and not data.get("application"):
            raise ValidationError(
                'missing; HTTP Basic (auth_scheme = "basic") sends the application id with '
                'the key: add application = "..."',
                "application",
            )


class AdminForm(Schema):
    action = fields.String(required=True, validate=validate.OneOf(("host_add", "host_remove")))
    host = fields.String(
        required=True,
        validate=checked_by(
            normalise_domain, "host", hint="{value!r} is not a host or domain name (example.org)"
        ),
    )


def client(vendor) -> TornevallClient:
    cfg = vendor.config
    return vendor.cached(
        "client",
        lambda: TornevallClient(
            vendor.http(),
            cfg["api_key"],
            application=cfg["application"],
            auth_scheme=cfg["auth_scheme"],
        ),
    )


# -- what is kept per mailbox (never a password) -----------------------------------------


def record(vendor, address: str) -> dict:
    return dict(vendor.state.read().get("mailboxes", {}).get(address) or {})


def _note(vendor, address: str, **changes) -> None:
    with vendor.state.editing() as state:
        state.setdefault("mailboxes", {}).setdefault(address, {}).update(changes)


def _forget(vendor, addresses) -> None:
    with vendor.state.editing() as state:
        for address in addresses:
            state.setdefault("mailboxes", {}).pop(address, None)


def _configure(vendor, address: str) -> dict:
    """Apply the default preferences that differ from the mailbox's; remember what they were
    (so ``clear_on_delete`` can put them back).  The changes, by name."""
    api, wanted = client(vendor), vendor.config["preferences"]
    current = api.get_spamassassin_options(address).preferences
    changed = {}
    for name, value in wanted.items():
        if current.get(name) != value:
            api.set_preference(address, name, value)
            changed[name] = current.get(name)
    before = dict(record(vendor, address).get("before") or {})
    before.update({k: v for k, v in changed.items() if k not in before and v is not None})
    _note(vendor, address, configured=time.time(), before=before, pending=False)
    return changed


# -- lifecycle -----------------------------------------------------------------------


@hookimpl
def vendor_config_schema():
    return TornevallSchema


@hookimpl
def vendor_check(vendor):
    api, probe = client(vendor), vendor.config["check_mailbox"]
    hosts, singles = _hosts(api.get_global_whitelist())
    if probe:
        options = api.get_spamassassin_options(probe)
        return f"authenticated; {probe} has {len(options.preferences)} preferences"
    return (
        f"authenticated; {len(hosts)} hosts and {len(singles)} other entries whitelisted globally"
    )


@hookimpl
def mailbox_added(vendor, event):
    address = event.mailbox.address
    try:
        changed = _configure(vendor, address)
    except VendorNotFound:
        _note(vendor, address, pending=True)
        return {
            "message": f"{address} is not a Tornevall account yet; its preferences are set "
            "once a password reset for it is verified"
        }
    if not changed:
        return {"message": "the default preferences were in place already"}
    return {"message": "preferences set: " + ", ".join(sorted(changed))}


@hookimpl
def password_reset(vendor, event):
    if event.mailbox is None or event.password is None:
        return None  # Tornevall verifies mailbox passwords; a domain account is not one
    address = event.mailbox.address
    valid = client(vendor).verify_account(address, event.password)
    _note(vendor, address, verified=valid, verified_at=time.time())
    if not valid:
        raise VendorRejected(
            VENDOR,
            f"did not accept the new password of {address} (verifyAccount answered false); "
            "its preferences are left as they are. Check that the mailbox is hosted by "
            "Tornevall Networks and that the new password reached its mail service",
            retry=False,
        )
    if record(vendor, address).get("pending"):
        changed = _configure(vendor, address)
        return {"message": f"password verified; preferences set: {', '.join(sorted(changed))}"}
    return {"message": "password verified"}


def _clear(vendor, address: str) -> int:
    """Remove the mailbox's whitelist and put back the preferences our defaults changed."""
    api = client(vendor)
    try:
        masks = api.get_user_whitelist(address)
    except VendorNotFound:
        return 0
    for mask in masks:
        api.remove_mask(address, mask)
    for name, value in (record(vendor, address).get("before") or {}).items():
        api.set_preference(address, name, value)
    return len(masks)


@hookimpl
def mailbox_deleted(vendor, event):
    address = event.mailbox.address
    if not vendor.config["clear_on_delete"]:
        _forget(vendor, [address])
        return {"message": "kept at Tornevall (clear_on_delete is off)"}
    removed = _clear(vendor, address)
    _forget(vendor, [address])
    return {"message": f"whitelist cleared ({removed} entries) and preferences put back"}


@hookimpl
def domain_deleted(vendor, event):
    suffix = "@" + event.domain.name
    known = [a for a in vendor.state.read().get("mailboxes", {}) if a.endswith(suffix)]
    if vendor.config["clear_on_delete"]:
        for address in known:
            _clear(vendor, address)
    _forget(vendor, known)
    done = "cleared" if vendor.config["clear_on_delete"] else "forgotten (kept at Tornevall)"
    return {"message": f"{len(known)} mailboxes of the domain {done}"}


# -- settings pages ------------------------------------------------------------------


def _hosts(entries: list[str]) -> tuple[list[str], list[str]]:
    """The global whitelist as hosts (both entries of a pair present) and single entries."""
    listed, hosts = set(entries), []
    for entry in entries:
        if entry.startswith("*@") and not entry.startswith("*@*."):
            host = entry[2:]
            if f"*@*.{host}" in listed:
                hosts.append(host)
    paired = {e for h in hosts for e in (f"*@{h}", f"*@*.{h}")}
    return sorted(hosts), sorted(e for e in entries if e not in paired)


def _removable(entry: str) -> str | None:
    """The host whose pair a single ``*@host`` or ``*@*.host`` entry belongs to."""
    for prefix in ("*@*.", "*@"):
        if entry.startswith(prefix):
            return entry[len(prefix) :]
    return None


def _kind(options: SpamOptions, name: str) -> str:
    if name in options.strict or name in STRICT:
        return "strict"
    return "boolean" if name in options.booleans else "text"


# a suspension keeps filtering: the rows are delivered as no-ops, seen by the queue and sync
domain_suspended, domain_unsuspended = suspension.hookimpls()


@hookimpl
def settings_fragments(vendor, scope, target, csrf_token):
    api = client(vendor)
    if scope == "admin":
        hosts, singles = _hosts(api.get_global_whitelist())
        html = render_fragment(
            VENDOR,
            "admin",
            hosts=hosts,
            singles=[(e, _removable(e)) for e in singles],
            blacklist=sorted(api.get_global_blacklist_sender()),
            defaults=vendor.config["preferences"],
            csrf_token=csrf_token,
        )
        return Fragment(VENDOR, "admin", "Tornevall SpamAssassin", html)
    if scope != "mailbox":
        return None
    address = target.address
    try:
        options, masks = api.get_spamassassin_options(address), api.get_user_whitelist(address)
    except VendorNotFound:
        options, masks = None, []
    rows = []
    if options is not None:
        for name in sorted(options.preferences):
            described = options.descriptions.get(name, "")
            label, help_ = LABELS.get(name, (name, described))
            rows.append(
                {
                    "name": name,
                    "value": options.preferences[name],
                    "kind": "choice" if name in CHOICES else _kind(options, name),
                    "label": label,
                    "description": "" if help_ == "Not described" else help_,
                    "choices": CHOICES.get(name, []),
                }
            )
    html = render_fragment(
        VENDOR,
        "mailbox",
        mailbox=target,
        rows=rows,
        masks=sorted(masks),
        known=options is not None,
        record=record(vendor, address),
        csrf_token=csrf_token,
    )
    return Fragment(VENDOR, "mailbox", f"Tornevall SpamAssassin for {target.unicode_address}", html)


def _mailbox_form(options: SpamOptions):
    """The mailbox form, generated from the mailbox's options: one field per preference
    (strict ones too, so they are refused by name rather than as unknown)."""
    names = {name: fields.String() for name in options.preferences}
    return Schema.from_dict(
        {
            **names,
            "action": fields.String(
                required=True, validate=validate.OneOf(("preferences", "mask_add", "mask_remove"))
            ),
            "emailmask": fields.String(),
        },
        name="TornevallMailboxForm",
    )()


def _changes(options: SpamOptions, data: dict) -> dict[str, str]:
    """The submitted preferences that differ from the mailbox's, checked; ValidationError
    naming each bad or strict one."""
    problems, changes = {}, {}
    for name in options.preferences:
        if name not in data:
            continue
        kind, value = _kind(options, name), data[name].strip()
        if kind == "strict":
            problems[name] = ["strict at Tornevall (only globally configurable); not changed"]
            continue
        try:
            if name in PREFERENCES:
                value = preference_value(name, value)
            elif kind == "boolean" and value not in ("0", "1"):
                raise ValueError("tick it or leave it unticked (1 or 0)")
            elif len(value) > _FREE_TEXT_MAX or not value.isprintable():
                raise ValueError(f"at most {_FREE_TEXT_MAX} printable characters")
        except ValueError as exc:  # shown beside the field, under its label: no key
            problems[name] = [str(exc).removeprefix(f"{name} ")]
            continue
        if value != options.preferences[name]:
            changes[name] = value
    if problems:
        raise ValidationError(problems)
    return changes


@hookimpl
def settings_submitted(vendor, scope, target, form):
    api = client(vendor)
    try:
        if scope == "admin":
            data = AdminForm().load(form)
            host = normalise_domain(data["host"], "host")
            if data["action"] == "host_add":
                added = api.add_global_host(host)
                said = "is now" if added else "was already"
                return SettingsResult(
                    True,
                    f"{host} {said} whitelisted for every mailbox (*@{host} and *@*.{host}).",
                    changed=("global_whitelist",),
                )
            removed = api.remove_global_host(host)
            said = "is no longer" if removed else "was not"
            return SettingsResult(
                True, f"{host} {said} on the global whitelist.", changed=("global_whitelist",)
            )
        if scope != "mailbox":
            return SettingsResult(False, "Tornevall settings are per mailbox, and global.")
        address = target.address
        try:
            options = api.get_spamassassin_options(address)
        except VendorNotFound:
            return SettingsResult(False, f"{address} is not a mailbox Tornevall hosts.")
        data = _mailbox_form(options).load(form)
        if data["action"] == "preferences":
            changes = _changes(options, data)
            for name, value in changes.items():
                api.set_preference(address, name, value)
            if not changes:
                return SettingsResult(True, "Nothing changed.")
            return SettingsResult(
                True, "Saved: " + ", ".join(sorted(changes)) + ".", changed=tuple(sorted(changes))
            )
        try:
            mask = sender_mask(data.get("emailmask", ""))
        except ValueError as exc:
            raise ValidationError({"emailmask": [str(exc)]}) from None
        if data["action"] == "mask_add":
            api.add_mask(address, mask)
            return SettingsResult(True, f"{mask} is on your whitelist.", changed=("whitelist",))
        api.remove_mask(address, mask)
        return SettingsResult(True, f"{mask} is not on your whitelist.", changed=("whitelist",))
    except ValidationError as exc:
        return SettingsResult.invalid(exc.messages)
