"""The shared vendor contract, run against the test-only 'toy' vendor.

This proves the contract harness itself works end to end (entry point ->
manager -> hookimpl -> HttpClient -> loopback emulator) before real vendors
subclass it."""

from toy_contract import ToyContract


class TestToy(ToyContract):
    """Every contract check, against the toy vendor."""
