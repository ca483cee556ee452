"""The shared contract wired to the test-only toy vendor (used by tests/vendors)."""

import pytest
import toyvendor_plugin

from spamfilter_plugin.events import Domain
from spamfilter_plugin.testing import LoopbackServer, VendorContract


class ToyContract(VendorContract):
    """The contract wired to the toy vendor and its emulator."""

    vendor_name = "toy"
    secrets = (toyvendor_plugin.TOKEN,)

    @pytest.fixture
    def emulator(self):
        with LoopbackServer(toyvendor_plugin.ToyEmulator()) as server:
            yield server

    def vendor_table(self, url):
        return {"api_url": url, "token": toyvendor_plugin.TOKEN}

    def bad_credentials_table(self, url):
        return {"api_url": url, "token": "wrong-token"}

    def held(self, emulator, target):
        toy = emulator.app
        password = toy.passwords.get(str(target))
        if isinstance(target, Domain):
            if target.name not in toy.domains:
                return None
            return {**toy.domains[target.name], "password": password}
        return {"password": password} if password else None

    def no_op(self, event):
        return event.hook in ("mailbox_added", "mailbox_deleted")  # toy filters per domain
