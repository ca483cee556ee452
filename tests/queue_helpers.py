"""Configs that point spamport and rackspace at the sandbox, for queue and worker tests."""

from spamfilter_plugin.config.model import write_config
from spamfilter_plugin.sandbox.rackspace import CUSTOMER, SECRET_KEY, USER_KEY
from spamfilter_plugin.sandbox.spamport import PASSWORD, USERNAME


def sandbox_config(
    tmp_path, sandbox, *, general=None, spamport=None, rackspace=None, name="config.toml"
):
    general = {
        "mail_host": "mx.provider.example",
        "lease_seconds": 5.0,
        "retry_base": 0.01,
        "retry_cap": 0.05,
        **(general or {}),
    }
    vendors = {
        "spamport": {
            "api_url": sandbox["spamport"].url,
            "username": USERNAME,
            "password": PASSWORD,
            "retries": 0,
            "deadline": 4.0,
            **(spamport or {}),
        },
        "rackspace": {
            "api_url": sandbox["rackspace"].url,
            "customer_id": CUSTOMER,
            "user_key": USER_KEY,
            "secret_key": SECRET_KEY,
            "retries": 0,
            "deadline": 4.0,
            "rate_limit": 10000,
            "filterlevel": "exclusive",
            "quarantineowner": "boss@example.com",
            **(rackspace or {}),
        },
    }
    return write_config(tmp_path / name, general, vendors)


def put(queue, event, vendors):
    """Queue *event* for *vendors* through the one way in; the row ids, in vendors' order."""
    from spamfilter_plugin import intake

    ((_, rows),) = intake.enqueue(queue, [event], vendors=vendors)
    return list(rows.values())
