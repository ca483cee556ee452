"""The host's own features, registered on the plugin manager like any plugin (as datasette
registers its default plugins): each module holds hook implementations of the host
features' hooks (``delivery_succeeded``, ``step_run``), so the dispatcher calls them without
knowing what they are.  A new built-in feature is a module here and its name in
:data:`BUILTIN_PLUGINS`."""

#: the modules registered on every plugin manager, by their import name
BUILTIN_PLUGINS = (
    "spamfilter_plugin.mx.plugin",
    "spamfilter_plugin.plan_change",
    "spamfilter_plugin.metrics",
    "spamfilter_plugin.audit",
    "spamfilter_plugin.drift",
    "spamfilter_plugin.alerts",
)
