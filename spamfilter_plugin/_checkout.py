"""Running from a source checkout.

The checkout keeps ``hooks/`` and ``templates/`` at the top level; an install puts
them inside the package as ``spamfilter_plugin.hooks`` and
``spamfilter_plugin.templates``.  When the package is imported from the checkout
itself (``python -m pytest`` there puts the checkout first on ``sys.path``, ahead
of the installed package), this finder maps those two subpackages to the
top-level folders, the same mapping ``setup.cfg`` installs, so the checkout
behaves as the installed package does.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

MAPPED = ("hooks", "templates")


class CheckoutFinder(importlib.abc.MetaPathFinder):
    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        package, _, sub = fullname.rpartition(".")
        if package != "spamfilter_plugin" or sub not in MAPPED:
            return None
        folder = self.root / sub
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def install(root: Path) -> None:
    if not any(isinstance(f, CheckoutFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, CheckoutFinder(root))
