"""The plugin manager and the per-vendor dispatch.

:func:`build_manager` makes a fresh pluggy manager (there is no module-level
one): vendors not enabled in the config are blocked *before* entry points are
loaded, so their code never runs, and ``check_pending()`` turns a misspelled
hookimpl into an error.  :class:`Runtime` ties the validated config to the
manager and calls each vendor on its own, so one vendor's failure never stops
another, and never fails the panel operation.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pluggy

from . import ENTRY_POINT_GROUP, hookspecs
from .builtin import BUILTIN_PLUGINS
from .config.model import Config, config_path, read_file
from .config.schema import VendorSchema, validate_config
from .context import PanelServices, VendorContext
from .errors import (
    ConfigError,
    InvalidInput,
    PluginError,
    SpamFilterError,
    VendorAuthError,
    VendorError,
    VendorHeld,
    VendorUnavailable,
)
from .events import LIFECYCLE_HOOKS, Domain, Event, Mailbox
from .panels import load
from .queue import STEP_HOOK
from .redaction import get_logger, redact
from .settle import plain_route
from .templating import SettingsResult

log = get_logger(__name__)

VENDOR_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def installed_vendors() -> dict[str, EntryPoint]:
    """The vendor plugins installed in this environment, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def build_manager(
    enabled: Iterable[str], *, plugins: Iterable[tuple[str, object]] = ()
) -> pluggy.PluginManager:
    """A plugin manager with only the *enabled* vendors loaded.

    :param enabled: vendor names (``[vendors.X]`` tables of the config).
    :param plugins: extra ``(name, plugin)`` pairs to register directly (panel
        adapters, or vendors under test).
    :raises PluginError: an enabled vendor is not installed, fails to import, or
        implements a hook that does not exist.
    """
    enabled = list(enabled)
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    installed = installed_vendors()
    extra = dict(plugins)
    for name in installed:
        if name not in enabled:
            pm.set_blocked(name)
    for module in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module), name=module)
    for name, plugin in extra.items():
        pm.register(plugin, name=name)
    for name in enabled:
        if name in extra:
            continue
        if name not in installed:
            known = ", ".join(sorted(installed)) or "none"
            raise PluginError(
                f"[vendors.{name}]: no vendor named {name!r} is installed (installed: {known}); "
                "check the spelling or install its plugin"
            )
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        except Exception as exc:
            raise PluginError(
                f"vendor {name!r} failed to load ({type(exc).__name__}: {redact(exc)}); "
                f"reinstall its plugin, or remove [vendors.{name}] to disable it"
            ) from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"vendor {pm.get_name(exc.plugin)!r} implements a hook that does not exist ({exc}); "
            "check the hook names against docs/hooks.md"
        ) from None
    return pm


@dataclass
class Outcome:
    """What one vendor made of one call."""

    vendor: str
    ok: bool
    result: Any = None
    error: SpamFilterError | None = None


class Runtime:
    """The validated config, the plugin manager and a context per enabled vendor."""

    def __init__(self, config: Config, pm: pluggy.PluginManager) -> None:
        self.config = config
        self.pm = pm
        self.panel_adapter = None
        if config.panel is not None:
            self.panel_adapter = load(config.panel["kind"], config.panel)
        self.panel = PanelServices(pm, self.panel_adapter)
        self.contexts = {
            name: VendorContext(
                name=name,
                config=table,
                general=config.general,
                panel=self.panel,
                fleet=config.fleet,
            )
            for name, table in config.vendors.items()
        }
        self._callers: dict[tuple[str, str], Any] = {}

    @property
    def vendors(self) -> list[str]:
        return sorted(self.contexts)

    def _caller(self, vendor: str, hook: str):
        key = (vendor, hook)
        if key not in self._callers:
            plugin = self.pm.get_plugin(vendor)
            if plugin is None:
                raise PluginError(f"vendor {vendor!r} is not enabled")
            others = [p for p in self.pm.get_plugins() if p is not plugin]
            self._callers[key] = self.pm.subset_hook_caller(hook, remove_plugins=others)
        return self._callers[key]

    def handles(self, vendor: str, hook: str) -> bool:
        """True when *vendor* implements *hook*."""
        return bool(self._caller(vendor, hook).get_hookimpls())

    def handlers(self, hook: str) -> list[str]:
        """The enabled vendors that implement *hook*."""
        return [v for v in self.vendors if self.handles(v, hook)]

    def capabilities(self) -> dict[str, list[str]]:
        """The lifecycle hooks each enabled vendor handles: what decides which vendors get
        an event (:func:`~spamfilter_plugin.intake.vendors_for`), here and in the
        panel-hook cache alike."""
        return {v: [h for h in LIFECYCLE_HOOKS if self.handles(v, h)] for v in self.vendors}

    def route(self, vendor: str, destination: str) -> str:
        """Where *vendor* sends the clean mail of a domain given *destination*, as routes are
        compared (:func:`~.settle.plain_route`): its ``domain_route``, else the host itself.
        The vendor's errors propagate (a host that does not resolve, say)."""
        found = None
        if self.handles(vendor, "domain_route"):
            found = self.call(vendor, "domain_route", destination=destination)
        return plain_route(found or destination)

    def call(self, vendor: str, hook: str, **kwargs: Any) -> Any:
        """Call *hook* on *vendor* only, with its context as ``vendor``; errors propagate.

        Returns the vendor's own result (for hooks that are not firstresult, the
        single implementation's return value rather than pluggy's list)."""
        if hook == STEP_HOOK:  # a built-in feature's step is the feature's to carry out
            done = self.pm.hook.step_run(host=self, vendor=self.contexts[vendor], **kwargs)
            if done is not None:
                return done
        caller = self._caller(vendor, hook)
        result = caller(vendor=self.contexts[vendor], **kwargs)
        if caller.spec is not None and caller.spec.opts.get("firstresult"):
            return result
        return result[0] if len(result) == 1 else (result or None)

    def _suspending(self, ctx: VendorContext, hook: str, kwargs: dict[str, Any]) -> Any:
        """Call *hook*; refused credentials suspend the vendor before the caller lets go of
        the vendor's lock, so a delivery waiting for it sees the suspension and sends nothing."""
        try:
            return self.call(ctx.name, hook, **kwargs)
        except VendorAuthError as exc:
            log.error(
                "%s: %s: %s; suspending calls to %s until 'spamfilter check' succeeds",
                ctx.name,
                hook,
                exc,
                ctx.name,
            )
            ctx.suspend(str(exc))
            raise

    def suspended(self, vendor: str) -> Outcome | None:
        """The failed Outcome that says why calls to *vendor* are suspended, or None."""
        error = self.contexts[vendor].guard.suspended_error()
        return None if error is None else Outcome(vendor, False, error=error)

    def call_isolated(self, vendor: str, hook: str, **kwargs: Any) -> Outcome:
        """Like :meth:`call`, but any failure becomes an unsuccessful Outcome (logged, redacted).

        A suspended vendor is not called at all, and an authentication failure suspends it.
        While its credentials are not proven, one call at a time runs across all processes
        (:mod:`~spamfilter_plugin.guard`); a call held back fails with VendorHeld."""
        ctx = self.contexts[vendor]
        guard = ctx.guard
        try:
            if hook == "vendor_check":
                with guard.checking(), guard.hold():
                    result = self._suspending(ctx, hook, kwargs)
            else:
                guard.admit()
                with guard.hold(admitted=True) as locked:
                    if locked:
                        guard.admit()  # refused elsewhere while this one waited its turn
                    result = self._suspending(ctx, hook, kwargs)
        except VendorHeld as exc:
            return Outcome(vendor, False, error=exc)
        except VendorAuthError as exc:
            return Outcome(vendor, False, error=exc)
        except SpamFilterError as exc:
            log.warning("%s: %s failed: %s", vendor, hook, exc)
            return Outcome(vendor, False, error=exc)
        except Exception as exc:  # a plugin bug must not stop the other vendors
            log.error("%s: %s crashed", vendor, hook, exc_info=True)
            return Outcome(
                vendor,
                False,
                error=VendorError(vendor, f"{hook} crashed: {type(exc).__name__}: {exc}"),
            )
        return Outcome(vendor, True, result=result)

    def after_delivery(self, vendor: str, hook: str, event: Event) -> list:
        """The steps the built-in features queue after *vendor* handled *event* with
        success (:func:`~.hookspecs.delivery_succeeded`)."""
        try:
            found = self.pm.hook.delivery_succeeded(
                host=self, vendor=self.contexts[vendor], hook=hook, event=event
            )
        except SpamFilterError as exc:  # nothing is lost: the event is delivered again
            raise VendorUnavailable(
                vendor, f"the step after {hook} could not be worked out ({exc}); trying again"
            ) from None
        return [step for steps in found for step in steps or ()]

    def recorded(self, queue, deliveries: list) -> None:
        """Tell the built-in features which deliveries were written
        (:func:`~.hookspecs.deliveries_recorded`); one that fails is logged, never the
        deliveries' loss."""
        try:
            self.pm.hook.deliveries_recorded(host=self, queue=queue, deliveries=deliveries)
        except Exception:  # an observer must not undo what it observes
            log.warning("a feature could not take note of the deliveries", exc_info=True)

    def chores(self, queue, now: float) -> None:
        """One round of the built-in features' periodic work
        (:func:`~.hookspecs.worker_chores`); each feature's failure is logged, the others
        still run."""
        for impl in self.pm.hook.worker_chores.get_hookimpls():
            try:
                impl.function(host=self, queue=queue, now=now)
            except Exception:  # a chore must not stop the worker
                log.error("%s: its periodic work failed", impl.plugin_name, exc_info=True)

    def deliver(self, event: Event, vendors: Iterable[str] | None = None) -> list[Outcome]:
        """Call the event's hook on each vendor that handles it, each on its own."""
        names = list(vendors) if vendors is not None else self.handlers(event.hook)
        return [self.call_isolated(v, event.hook, event=event) for v in names]

    def check(self, vendor: str) -> Outcome:
        """Run the vendor's cheap authenticated call (``vendor_check``), even when the vendor
        is suspended (this is the admin's way to resume it); success lifts a suspension."""
        if not self.handles(vendor, "vendor_check"):
            return Outcome(vendor, True, result="no check implemented by this vendor")
        out = self.call_isolated(vendor, "vendor_check")
        ctx = self.contexts[vendor]
        if out.ok and ctx.suspension() is not None:
            ctx.resume()
            out.result = f"{out.result}; suspension lifted"
        return out

    def settings_submitted(
        self, vendor: str, scope: str, target: Domain | Mailbox | None, form: dict[str, str]
    ) -> Any:
        """Hand a submitted form to *vendor* (the panel has checked the CSRF token, which is
        removed here).  What the hook raises becomes an unsuccessful SettingsResult in plain
        words: a refused value names its field; a vendor's refusal says nothing was changed
        (and refused credentials suspend the vendor, as from any hook)."""

        fields = {k: v for k, v in form.items() if k != "csrf_token"}
        out = self.call_isolated(
            vendor, "settings_submitted", scope=scope, target=target, form=fields
        )
        if out.ok:
            return out.result
        if isinstance(out.error, InvalidInput):
            return SettingsResult(
                False,
                f"Nothing was changed: {out.error.message}",
                errors={out.error.field: out.error.message},
            )
        return SettingsResult(False, f"Nothing was changed: {out.error}")

    def settings_fragments(
        self,
        scope: str,
        target: Domain | Mailbox | None,
        csrf_token: str,
        query: dict[str, str] | None = None,
    ) -> list:
        """Every vendor's fragments for a page; a failing vendor contributes none (logged).
        *query* is the page's query string, as a dict (see the hook)."""
        if scope not in hookspecs.SCOPES:
            raise ConfigError(
                f"unknown settings scope {scope!r}; one of {', '.join(hookspecs.SCOPES)}"
            )
        fragments = []
        for name in self.handlers("settings_fragments"):
            out = self.call_isolated(
                name,
                "settings_fragments",
                scope=scope,
                target=target,
                csrf_token=csrf_token,
                query=dict(query or {}),
            )
            if out.ok and out.result:
                fragments.extend(out.result if isinstance(out.result, list) else [out.result])
        return fragments


def load_runtime(
    path: str | Path | None = None, *, plugins: Iterable[tuple[str, object]] = ()
) -> Runtime:
    """Read the config file, load the enabled vendors and validate every table."""
    raw = read_file(config_path(path))
    for name in raw.enabled_vendors:
        if not VENDOR_NAME.match(name):
            raise ConfigError(
                f"[vendors.{name}]: vendor names are lower-case letters, digits and _"
            )
    pm = build_manager(raw.enabled_vendors, plugins=plugins)
    schemas = {}
    for name in raw.enabled_vendors:
        plugin = pm.get_plugin(name)
        others = [p for p in pm.get_plugins() if p is not plugin]
        schema = pm.subset_hook_caller("vendor_config_schema", remove_plugins=others)()
        schemas[name] = schema or VendorSchema
    return Runtime(validate_config(raw, schemas), pm)
