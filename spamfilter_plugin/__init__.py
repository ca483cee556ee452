"""spamfilter-plugin: provision inbound spam filtering from a hosting control panel.

The package is deliberately light to import: the panel-hook path imports
:mod:`spamfilter_plugin.events` and little else.
"""

__version__ = "0.1.0"

#: Entry-point group under which vendor plugins are registered.
ENTRY_POINT_GROUP = "spamfilter_plugin"

__all__ = ["ENTRY_POINT_GROUP", "__version__"]
