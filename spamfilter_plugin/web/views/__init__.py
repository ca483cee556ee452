"""The console's pages, one Flask Blueprint each: logging in and out (:mod:`.auth`), the
domains (:mod:`.domains`), the settings pages (:mod:`.settings`), the queue (:mod:`.queue`), the
history (:mod:`.history`),
the demo's panel (:mod:`.demo`), the metrics (:mod:`.metrics`) and the JSON API
(:mod:`.api`).  :data:`BLUEPRINTS` is
what the application registers."""

from __future__ import annotations

from . import api, auth, demo, domains, history, metrics, queue, settings

BLUEPRINTS = (
    auth.bp, domains.bp, settings.bp, queue.bp, history.bp, demo.bp, metrics.bp, api.bp,
)  # fmt: skip
