"""spamfilter-plugin: provision inbound spam filtering from a hosting control panel.

The package is deliberately light to import: the panel-hook path imports
:mod:`spamfilter_plugin.events` and little else.
"""

import os as _os

__version__ = "0.1.0"

#: Entry-point group under which vendor plugins are registered.
ENTRY_POINT_GROUP = "spamfilter_plugin"
#: Entry-point group under which vendors register their sandbox emulators (an
#: :class:`~spamfilter_plugin.sandbox.base.Emulator` subclass, by the vendor's name).
EMULATOR_ENTRY_POINT_GROUP = "spamfilter_plugin.emulators"

__all__ = ["EMULATOR_ENTRY_POINT_GROUP", "ENTRY_POINT_GROUP", "__version__"]

# Imported from a source checkout rather than an install: map hooks/ and templates/.
_here = _os.path.dirname(__file__)
if not _os.path.isdir(_os.path.join(_here, "hooks")):
    _root = _os.path.dirname(_here)
    if _os.path.isfile(_os.path.join(_root, "hooks", "__init__.py")):
        from pathlib import Path as _Path

        from ._checkout import install as _install

        _install(_Path(_root))
