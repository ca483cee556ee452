"""Entry-point discovery, blocking, hook validation and vendor isolation."""

import logging
import sys

import pytest
import toyvendor_plugin

from spamfilter_plugin.errors import PluginError, VendorError
from spamfilter_plugin.events import DomainCreated
from spamfilter_plugin.manager import build_manager, installed_vendors, load_runtime
from spamfilter_plugin.testing import write_config


def test_installed_vendors_are_discovered_from_entry_points():
    found = installed_vendors()
    assert {"toy", "crashy", "broken", "typo"} <= set(found)
    assert found["toy"].value == "toyvendor_plugin"
    assert found["toy"].dist.name == "spamfilter-test-plugins"


def test_disabled_vendors_are_blocked_before_loading():
    sys.modules.pop("brokenvendor_plugin", None)
    pm = build_manager(["toy"])
    assert pm.get_plugin("toy") is toyvendor_plugin
    for name in ("broken", "typo", "crashy"):
        assert pm.is_blocked(name)
        assert pm.get_plugin(name) is None
    # the broken module raises on import: it was never imported
    assert "brokenvendor_plugin" not in sys.modules


def test_enabled_plugin_that_fails_to_import_is_named():
    with pytest.raises(PluginError) as info:
        build_manager(["broken"])
    assert "'broken' failed to load" in str(info.value) and "[vendors.broken]" in str(info.value)


def test_misspelled_hookimpl_is_an_error():
    with pytest.raises(PluginError) as info:
        build_manager(["typo"])
    assert "domain_create" in str(info.value) and "'typo'" in str(info.value)


def test_uninstalled_vendor_is_an_error():
    with pytest.raises(PluginError) as info:
        build_manager(["nosuch"])
    assert "no vendor named 'nosuch'" in str(info.value)


def test_top_level_hooks_package_is_never_imported():
    build_manager(["toy"])
    assert "hooks" not in sys.modules


def test_a_failing_vendor_never_stops_the_others(tmp_path, toy_emulator, caplog):
    path = write_config(
        tmp_path / "c.toml",
        {"state_dir": str(tmp_path)},
        {
            "crashy": {},
            "toy": {"api_url": toy_emulator.url, "token": toyvendor_plugin.TOKEN},
        },
    )
    rt = load_runtime(path)
    assert rt.handlers("domain_created") == ["crashy", "toy"]  # crashy is called first
    with caplog.at_level(logging.ERROR):
        outcomes = rt.deliver(DomainCreated(domain="isolated.example", destination="192.0.2.7"))
    by = {o.vendor: o for o in outcomes}
    assert not by["crashy"].ok and isinstance(by["crashy"].error, VendorError)
    assert "crashy exploded on isolated.example" in str(by["crashy"].error)
    assert by["toy"].ok
    assert toy_emulator.state.domains["isolated.example"]["destination"] == "192.0.2.7"
    assert "crashy" in caplog.text


def test_handles_reflects_the_hookimpls_present(tmp_path):
    path = write_config(tmp_path / "c.toml", {}, {"crashy": {}})
    rt = load_runtime(path)
    assert rt.handles("crashy", "domain_created")
    assert not rt.handles("crashy", "domain_deleted")
    assert rt.handlers("mailbox_added") == []


def test_registered_plugins_join_enabled_vendors(tmp_path):
    class Panel:
        from spamfilter_plugin.hookspecs import hookimpl

        @hookimpl
        def publish_dns_record(self, domain, record_type, name, value):
            return True

    pm = build_manager([], plugins=[("panel", Panel())])
    assert pm.hook.publish_dns_record(domain="d", record_type="TXT", name="n", value="v") is True


def test_refused_credentials_suspend_the_vendor_until_check_succeeds(tmp_path, toy_emulator):
    from spamfilter_plugin.errors import VendorAuthError

    path = write_config(
        tmp_path / "c.toml",
        {},
        {"toy": {"api_url": toy_emulator.url, "token": toyvendor_plugin.TOKEN, "retries": 3}},
    )
    rt = load_runtime(path)
    toy_emulator.state.token = "rotated-at-vendor"
    (first,) = rt.deliver(DomainCreated(domain="a.example"))
    assert isinstance(first.error, VendorAuthError)
    assert len(toy_emulator.state.requests) == 1  # refused once, never retried
    suspended = tmp_path / "state" / "suspended-toy.json"
    assert oct(suspended.stat().st_mode & 0o777) == "0o600"
    # another process (a fresh runtime) sees the suspension and makes no call
    (second,) = load_runtime(path).deliver(DomainCreated(domain="b.example"))
    assert (
        not second.ok
        and "suspended" in str(second.error)
        and "spamfilter check" in str(second.error)
    )
    assert len(toy_emulator.state.requests) == 1
    # check still calls (the admin's action) and reports the failure while the token is wrong
    assert not rt.check("toy").ok and len(toy_emulator.state.requests) == 2
    toy_emulator.state.token = toyvendor_plugin.TOKEN
    out = rt.check("toy")
    assert out.ok and "suspension lifted" in out.result and not suspended.exists()
    (third,) = rt.deliver(DomainCreated(domain="c.example"))
    assert third.ok and "c.example" in toy_emulator.state.domains


def test_the_guard_sees_what_another_process_wrote_at_once_though_it_reads_files_once(tmp_path):
    """Two guards on one state_dir stand for two processes: each admit and each proof check
    looks at the files as they are now (a refusal elsewhere stops the very next request),
    while a file that did not change is not parsed again."""
    from spamfilter_plugin.errors import VendorSuspended
    from spamfilter_plugin.guard import VendorGuard

    table = {"api_url": "https://api.example.net/", "password": "s3cret"}
    here, there = (VendorGuard("spamport", tmp_path, table) for _ in range(2))
    here.admit()
    assert not here.proven()
    there.prove()
    assert here.proven()
    reads = []
    real = type(here.proof_file).read_text

    def counted(path, *args, **kwargs):
        reads.append(path.name)
        return real(path, *args, **kwargs)

    import unittest.mock

    with unittest.mock.patch.object(type(here.proof_file), "read_text", counted):
        for _ in range(5):
            assert here.proven()
            here.admit()
        assert reads == []  # nothing changed: nothing parsed again
        there.suspend("HTTP 401 from the vendor")
        with pytest.raises(VendorSuspended, match="HTTP 401"):
            here.admit()
        assert not here.proven()  # a suspension forgets the proof
        there.resume()
        here.admit()
        assert reads == ["suspended-spamport.json"]  # read once, when it appeared
    # another table (changed credentials) is not proven by the old proof
    there.prove()
    assert not VendorGuard("spamport", tmp_path, {**table, "password": "other"}).proven()


def test_a_delivery_looks_at_one_guard_file_when_the_credentials_are_proven(tmp_path):
    """Right after admit() found no suspension (hold(admitted=True)), credentials this
    process knows to be proven are taken as proven: one look at the files, not two; a
    refusal elsewhere is still seen by that look, and hold() reads the proof when admit()
    did not just look (an admin's check) or the credentials are not known to be proven."""
    import os
    import unittest.mock

    from spamfilter_plugin import guard as guard_module
    from spamfilter_plugin.errors import VendorSuspended
    from spamfilter_plugin.guard import VendorGuard

    table = {"api_url": "https://api.example.net/", "password": "s3cret"}
    here, there = (VendorGuard("spamport", tmp_path, table) for _ in range(2))
    there.prove()
    looked: list[str] = []
    real = os.stat

    def counted(path, *args, **kwargs):
        looked.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    with unittest.mock.patch.object(guard_module.os, "stat", counted):
        here.admit()
        with here.hold(admitted=True) as locked:
            assert not locked
        assert looked == ["suspended-spamport.json", "proven-spamport.json"]  # not known yet
        looked.clear()
        here.admit()
        with here.hold(admitted=True) as locked:
            assert not locked
        assert looked == ["suspended-spamport.json"]  # known, and just looked
        looked.clear()
        with here.checking(), here.hold() as locked:  # no admit just before: it reads
            assert not locked
        assert looked == ["proven-spamport.json"]
        there.suspend("HTTP 401 from the vendor")
        with pytest.raises(VendorSuspended):
            here.admit()
        looked.clear()
        with here.hold() as locked:  # admit found a suspension: it reads the proof, and locks
            pass
        assert locked and looked[0] == "proven-spamport.json"


def test_a_vendors_api_client_is_made_once_however_many_threads_ask_first(tmp_path):
    """A worker's delivery threads start together and each asks for the vendor's client:
    it is made once (a second client would open connections of its own and the first
    would be left unclosed)."""
    import threading
    import time

    from spamfilter_plugin.context import VendorContext

    ctx = VendorContext("spamport", {}, None, None)  # type: ignore[arg-type]
    made: list[object] = []

    def factory() -> object:
        time.sleep(0.05)  # as long as a session takes to set up, and more
        made.append(object())
        return made[-1]

    start = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(ctx.cached("client", factory))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and got == made * 8
