"""The shared vendor contract, run against the test-only 'toy' vendor.

This proves the contract harness itself works end to end (entry point ->
manager -> hookimpl -> HttpClient -> loopback emulator) before real vendors
subclass it."""

import pytest
import toyvendor_plugin

from spamfilter_plugin.testing import LoopbackServer, VendorContract


class TestToy(VendorContract):
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
