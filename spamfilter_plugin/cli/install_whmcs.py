"""``spamfilter install-whmcs WHMCS_ROOT``: copy the WHMCS provisioning module shipped with
the package into ``WHMCS_ROOT/modules/servers/spamfilter/`` (docs/whmcs.md)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ._common import EXIT_OK, CliError, print_json

#: the module's files, as shipped in the package (``spamfilter_plugin/whmcs``)
FILES = ("spamfilter.php", "templates/overview.tpl")
#: where WHMCS looks for a provisioning module named spamfilter
MODULE_DIR = Path("modules", "servers", "spamfilter")


def register(sub) -> None:
    p = sub.add_parser(
        "install-whmcs",
        help="copy the WHMCS provisioning module into a WHMCS installation",
        description="Copy the WHMCS module into WHMCS_ROOT/modules/servers/spamfilter/ "
        "(files 0644, folders 0755; files already there are replaced, and said so). Then "
        "add a server of type 'Spam filtering (spamfilter-plugin)' in WHMCS, with an admin "
        "API token (spamfilter token create NAME --role admin) in its password field.",
    )
    p.add_argument(
        "whmcs_root",
        metavar="WHMCS_ROOT",
        help="the WHMCS installation's folder (the one holding init.php and modules/)",
    )
    p.add_argument(
        "--owner",
        metavar="USER",
        help="give the copied files to this user (the web server's, say); default: unchanged",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_run)


def _run(args) -> int:
    root = Path(args.whmcs_root)
    if not (root / "modules" / "servers").is_dir():
        raise CliError(
            f"WHMCS_ROOT: {root} has no modules/servers folder; give the folder WHMCS is "
            "installed in (it holds init.php and modules/)"
        )
    owner = _uid_gid(args.owner) if args.owner else None
    shipped = resources.files("spamfilter_plugin.whmcs")
    target = root / MODULE_DIR
    written = []
    for name in FILES:
        data = shipped.joinpath(name).read_bytes()
        path = target / name
        existed = path.exists()
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.new")
        temporary.write_bytes(data)
        os.chmod(temporary, 0o644)
        if owner is not None:
            os.chown(temporary, *owner)
        os.replace(temporary, path)  # a WHMCS request never reads half a file
        written.append({"path": str(path), "replaced": existed})
    if owner is not None:
        for folder in (target, target / "templates"):
            os.chown(folder, *owner)
    if args.json:
        print_json({"module": str(target), "files": written})
        return EXIT_OK
    for item in written:
        print(f"{'replaced' if item['replaced'] else 'wrote'} {item['path']}")
    print(
        "next: in WHMCS, Configuration > System Settings > Servers: add a server of type "
        "'Spam filtering (spamfilter-plugin)' with this server's host name, port and an admin "
        "API token as its password; then a product whose module is that type (docs: WHMCS)"
    )
    return EXIT_OK


def _uid_gid(user: str) -> tuple[int, int]:
    import pwd

    try:
        found = pwd.getpwnam(user)
    except KeyError:
        raise CliError(f"--owner: there is no user {user!r} on this server") from None
    return found.pw_uid, found.pw_gid
