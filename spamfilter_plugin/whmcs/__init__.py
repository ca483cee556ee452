"""The WHMCS provisioning module (PHP), shipped with the package and copied into a WHMCS
installation by ``spamfilter install-whmcs`` (docs/whmcs.md)."""
