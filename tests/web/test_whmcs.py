"""The WHMCS module, run by PHP (Debian's php-cli) through a stand-in for what WHMCS gives a
module (whmcs_standin.php), against the demo's console over loopback: each action does what
the product says at the vendors' emulators, a failure is a message and never "success", and
the module log never holds the token."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from console_helpers import wait_until
from queue_helpers import run_cli

from spamfilter_plugin import tokens
from spamfilter_plugin.queue import open_queue

PHP = shutil.which("php")
STANDIN = Path(__file__).with_name("whmcs_standin.php")
MODULE = Path(__file__).parents[2] / "spamfilter_plugin" / "whmcs" / "spamfilter.php"

if PHP is None:
    if os.environ.get("SFP_REQUIRE_PHP") == "1" or os.environ.get("CI") == "true":
        raise RuntimeError("php is required (apt-get install -y php-cli)")
    pytest.skip("php is not installed (apt-get install -y php-cli)", allow_module_level=True)


@pytest.fixture(scope="module")
def keys(demo):
    made = {}
    with open_queue(demo.folder / "state") as q:
        for name, role in (("whmcs", "admin"), ("whmcs-resel", "reseller:resel")):
            if q.token_named(name) is not None:
                q.token_remove(name)
            made[name], _ = tokens.create(q, name, role)
    return made


def module(function: str, params: dict, module_path: Path = MODULE) -> tuple:
    """Run spamfilter_<function>(params) in PHP: what it returned, and the module log."""
    done = subprocess.run(
        [PHP, str(STANDIN)],
        input=json.dumps({"module": str(module_path), "function": function, "params": params}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    return doc["result"], doc["log"]


def server(demo, token: str, **more) -> dict:
    """The module parameters of a service on WHMCS's server record for the demo's console."""
    port = demo.url.rstrip("/").rsplit(":", 1)[1]
    return {"serverhostname": "127.0.0.1", "serverip": "127.0.0.1", "serverport": port,
            "serversecure": False, "serverusername": "", "serverpassword": token,
            "serviceid": 7, "userid": 12, **more}  # fmt: skip


def test_the_module_is_valid_php_and_installs_into_whmcs(tmp_path):
    lint = subprocess.run([PHP, "-l", str(MODULE)], capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0 and "No syntax errors" in lint.stdout
    config = tmp_path / "none.toml"
    code, out, err = run_cli(config, "install-whmcs", str(tmp_path))
    assert code == 2 and "has no modules/servers folder" in err
    (tmp_path / "modules" / "servers").mkdir(parents=True)
    code, out, err = run_cli(config, "install-whmcs", str(tmp_path), "--json")
    assert code == 0, err
    files = json.loads(out)["files"]
    assert [f["replaced"] for f in files] == [False, False]
    installed = tmp_path / "modules" / "servers" / "spamfilter" / "spamfilter.php"
    assert installed.read_bytes() == MODULE.read_bytes()
    assert stat.S_IMODE(installed.stat().st_mode) == 0o644
    assert (installed.parent / "templates" / "overview.tpl").is_file()
    code, out, err = run_cli(config, "install-whmcs", str(tmp_path))
    assert code == 0 and out.startswith("replaced ")


def test_test_connection_needs_an_admin_token_and_a_console_that_answers(demo, keys):
    result, _ = module("TestConnection", server(demo, keys["whmcs"]))
    assert result == {"success": True, "error": ""}
    result, _ = module("TestConnection", server(demo, keys["whmcs-resel"]))
    assert result["success"] is False and "not an admin token" in result["error"]
    result, _ = module("TestConnection", server(demo, "sfp_refused-token"))
    assert result["success"] is False and "(401)" in result["error"]
    with socket.socket() as s:  # a port nobody listens on: the console is down
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    result, _ = module("TestConnection", server(demo, keys["whmcs"], serverport=str(closed)))
    assert result["success"] is False and "could not be reached" in result["error"]
    plain = server(demo, keys["whmcs"], serverhostname="filter.example.net", serverip="")
    result, log = module("TestConnection", plain)
    assert result["success"] is False and 'tick "Secure"' in result["error"] and log == []
    # the console's path behind a proxy comes from the server's Username field
    result, log = module("TestConnection", server(demo, keys["whmcs"], serverusername="/nope/"))
    assert (
        result["success"] is False
        and "answered HTTP 404, not the spam filter's API" in (result["error"])
    )
    assert log[0]["request"].startswith(f"GET {demo.url}nope/api/v1/queue?limit=1")
    result, log = module("TestConnection", server(demo, keys["whmcs"], serverusername="a b"))
    assert result["success"] is False and "console's path" in result["error"] and log == []


def test_a_product_sold_for_mail_hosted_elsewhere_is_created_suspended_and_terminated(demo, keys):
    em = demo.sandbox["spamport"].emulator
    name = "whmcs-customer.example"
    defaults = {"spamport/domain": {"action": "save", "spamscore": "high"}}
    params = server(demo, keys["whmcs"], domain=name, configoption1="spamport",
                    configoption2="192.0.2.30", configoption3=json.dumps(defaults))  # fmt: skip
    result, log = module("CreateAccount", params)
    assert result == "success", result
    assert em.domains[name]["transport"] == "smtp:192.0.2.30"
    assert em.domains[name]["spamscore"] == "high"  # the product's default settings
    assert name not in demo.sandbox["spambarrier"].emulator.domains  # not this product's
    # the admin's services tab and the client area show the state
    fields, _ = module("AdminServicesTabFields", params)
    assert "<strong>spamport</strong> protected" in fields["Spam filtering"]
    assert fields["Mail goes to"] == "192.0.2.30"
    area, _ = module("ClientArea", params)
    variables = area["templateVariables"]
    assert area["tabOverviewReplacementTemplate"] == "templates/overview.tpl"
    assert {"vendor": "spamport", "state": "protected"} in variables["spamfilterStates"]
    assert variables["spamfilterLoginUrl"].startswith(demo.url + "enter/")
    # the link logs the WHMCS client in on the domain's page, and nowhere else
    import requests

    visit = requests.Session()
    page = visit.get(variables["spamfilterLoginUrl"], timeout=10)
    assert page.status_code == 200 and "whmcs-client-12" in page.text and name in page.text
    other = visit.get(demo.url + "settings/domain/bob.example/", timeout=10)
    assert other.status_code == 403, other.url + other.text[:3000]
    sso, _ = module("ServiceSingleSignOn", params)
    assert sso["success"] is True and sso["redirectTo"].startswith(demo.url + "enter/")
    # suspension is queued (each vendor follows on_suspend), and lifted
    result, _ = module("SuspendAccount", {**params, "suspendreason": "Overdue on Payment"})
    assert result == "success"
    with open_queue(demo.folder / "state") as q:
        assert q.suspensions()[name][1] == "Overdue on Payment"
    # the demo's SpamPort has on_suspend = "bypass": mail is relayed unscanned meanwhile
    wait_until(lambda: em.domains[name]["noscan"] == "1")
    listed, _ = module("ListAccounts", params)
    mine = [a for a in listed["accounts"] if a["domain"] == name]
    assert listed["success"] is True and mine[0]["status"] == "Suspended"
    assert mine[0]["product"] == "spamport" and mine[0]["uniqueIdentifier"] == name
    assert module("UnsuspendAccount", params)[0] == "success"
    with open_queue(demo.folder / "state") as q:
        assert name not in q.suspensions()
    wait_until(lambda: em.domains[name]["noscan"] == "0")  # filtering as it was before
    result, log = module("TerminateAccount", params)
    assert result == "success"
    wait_until(lambda: name not in em.domains)
    # the token is in no log entry, not even in what the module handed over
    everything = json.dumps(log)
    assert all(keys["whmcs"] in entry["replace"] for entry in log)
    assert all(keys["whmcs"] not in entry["given"] for entry in log)
    assert everything.count(keys["whmcs"]) == len(log)  # only in each replace list


def test_a_changed_package_moves_vendors_and_a_refusal_is_never_success(demo, keys):
    demo.panel.add_domain("carol", "whmcs-panel.example")
    sp, sb = demo.sandbox["spamport"].emulator, demo.sandbox["spambarrier"].emulator
    wait_until(lambda: "whmcs-panel.example" in sp.domains and "whmcs-panel.example" in sb.domains)
    params = server(demo, keys["whmcs"], domain="whmcs-panel.example", configoption1="spamport")
    assert module("ChangePackage", params)[0] == "success"
    wait_until(lambda: "whmcs-panel.example" not in sb.domains)
    assert "whmcs-panel.example" in sp.domains
    # a destination for a domain the panel holds is the API's 422, word for word
    result, _ = module("CreateAccount", {**params, "configoption2": "192.0.2.31"})
    assert result.startswith("The spam filter refused (422): destination: ")
    # a domain no panel holds, without a destination: not found, and not "success"
    result, _ = module("CreateAccount", server(demo, keys["whmcs"], domain="nowhere.example"))
    assert result.startswith("The spam filter refused (404)") and "destination" in result
    # a reseller's token may not protect; a refused token is an error
    refused, _ = module("CreateAccount", {**params, "serverpassword": keys["whmcs-resel"]})
    assert refused.startswith("The spam filter refused (403)")
    result, _ = module("SuspendAccount", {**params, "serverpassword": "sfp_revoked"})
    assert result.startswith("The spam filter refused (401)")
    result, _ = module("CreateAccount", {**params, "configoption3": "{not json"})
    assert "Default settings" in result and result != "success"
