"""The one-command demo: every vendor emulator, a temporary state directory, a fake
DirectAdmin tree with a few accounts, domains and mailboxes, a config pointing at all of
it, and the worker and the console on loopback.

The example domains and mailboxes are created the way DirectAdmin creates them: the
panel's records are written, then the panel's hook runs with DirectAdmin's environment
(:func:`spamfilter_plugin.panels.hook.run`), exactly as on a real server.  The console's
"create a domain" and "create a mailbox" forms do the same.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..config.cache import CACHE_ENV
from ..config.model import toml_table
from ..errors import InvalidInput
from ..eventdata import normalise_domain, normalise_email
from ..hookspecs import hookimpl
from ..manager import load_runtime
from ..panels import hook as panel_hook
from ..sandbox import Sandbox
from ..sandbox.dns import ZoneServer
from .console import hash_password
from .serve import ConsoleServer, console_for

DATA = "usr/local/directadmin/data/users"
#: the demo's folders are named so, in the system's temporary directory
PREFIX = "spamfilter-demo-"
#: the file in a demo's folder naming the process that runs it
OWNER = "owner"
#: the demo panel's DNS administrator, and the vendor whose MX hosts the demo switches to
DNS_USER = "admin"
MX_VENDOR = "spamport"
MX_HOSTS = [{"host": "mx1.spamport.example", "priority": 10},
            {"host": "mx2.spamport.example", "priority": 20}]  # fmt: skip
#: Rackspace's requests per minute in the demo, for the emulator and the client alike (the
#: documented 60 would make a visitor who opens many mailbox pages wait)
DEMO_RACKSPACE_RATE = 600
#: the vendors built in, whose emulators the demo serves
VENDORS = ("spamport", "spamwall", "spambarrier", "tornevall", "rackspace")

#: the accounts of the demo panel: a reseller with two customers, and one of the admin's
ACCOUNTS: dict[str, dict] = {
    "admin": {"usertype": "admin", "creator": "root"},
    "resel": {"usertype": "reseller", "creator": "admin"},
    "alice": {"usertype": "user", "creator": "resel"},
    "bob": {"usertype": "user", "creator": "resel"},
    "carol": {"usertype": "user", "creator": "admin"},
}
#: domain -> (owner, mailbox local parts)
DOMAINS: dict[str, tuple[str, list[str]]] = {
    "alice.example": ("alice", ["info", "sales"]),
    "bücher.example": ("alice", ["kontakt"]),
    "bob.example": ("bob", ["bob", "office"]),
    "carol.example": ("carol", ["carol"]),
}


class DemoPanel:
    """A DirectAdmin file tree under *root*, and the hook a panel runs on each change.
    *hosted* is told of each new mailbox (the demo's mail service)."""

    def __init__(self, root: Path, config_path: Path, hosted=None, zones=None) -> None:
        self.root, self.config_path = root, config_path
        #: told of each new mailbox (the demo's mail service), and of each new domain (the
        #: panel's DNS makes its zone)
        self.hosted, self.zones = hosted, zones
        self._lock = threading.Lock()

    def _file(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _append(self, line: str, *parts: str) -> None:
        with self._file(*parts).open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def write_accounts(self) -> None:
        for user, conf in ACCOUNTS.items():
            self._file(DATA, user, "user.conf").write_text(
                f"username={user}\nusertype={conf['usertype']}\ncreator={conf['creator']}\n"
            )
            self._file(DATA, user, "domains.list").touch()
            if conf["creator"] in ACCOUNTS and conf["creator"] != "admin":
                self._append(user, DATA, conf["creator"], "users.list")

    def accounts(self) -> list[str]:
        return [u for u, c in ACCOUNTS.items() if c["usertype"] == "user"]

    def _hook(self, hook: str, env: dict[str, str]) -> None:

        panel_hook.run("directadmin", [hook], config=str(self.config_path), env=env, stdin="")

    def add_domain(self, owner: str, domain: str) -> tuple[str, str]:
        """Create *domain* for the account *owner*, as DirectAdmin does; (message, kind)."""
        if owner not in self.accounts():
            return f"owner: {owner!r} is not an account of the demo panel", "error"
        try:
            name = normalise_domain(domain.strip(), "domain")
        except InvalidInput as exc:
            return exc.message, "error"
        with self._lock:
            owners = self.root / "etc/virtual/domainowners"
            known = owners.read_text().splitlines() if owners.exists() else []
            if any(line.split(":", 1)[0] == name for line in known):
                return f"domain: {name} exists on the panel already", "error"
            self._append(name, DATA, owner, "domains.list")
            self._append(f"{name}: {owner}", "etc/virtual/domainowners")
            self._append(name, "etc/virtual/domains")  # this server handles its mail
            self._file("etc/virtual", name, "passwd").touch()
        if self.zones is not None:
            self.zones(name)
        self._hook("domain_create_post", {"domain": name, "username": owner, "creator": "admin"})
        return f"Created {domain.strip()} for {owner}; the panel's hook queued it.", "ok"

    def add_mailbox(self, address: str, password: str) -> tuple[str, str, str | None]:
        """Create a mailbox as DirectAdmin does; (message, kind, its domain or None)."""
        try:
            mailbox = normalise_email(address.strip(), "address")
        except InvalidInput as exc:
            return exc.message, "error", None
        if len(password) < 8:
            return "password: use at least 8 characters", "error", None
        local, domain = mailbox.rsplit("@", 1)
        passwd = self.root / "etc/virtual" / domain / "passwd"
        if not passwd.exists():
            return f"address: {domain} is not a domain of the demo panel", "error", None
        with self._lock:
            if any(line.split(":", 1)[0] == local for line in passwd.read_text().splitlines()):
                return f"address: {mailbox} exists already", "error", domain
            self._append(f"{local}:x:demo", "etc/virtual", domain, "passwd")
        if self.hosted is not None:
            self.hosted(mailbox, password)
        self._hook("email_create_post", {"user": local, "domain": domain, "passwd": password})
        return f"Created {address.strip()}; the panel's hook queued it.", "ok", domain

    def seed(self) -> None:
        self.write_accounts()
        for domain, (owner, locals_) in DOMAINS.items():
            self.add_domain(owner, domain)
            name = normalise_domain(domain, "domain")
            for local in locals_:
                self.add_mailbox(f"{local}@{name}", secrets.token_urlsafe(12))


class DemoDns:
    """The demo's DNS and mail host: a loopback name server (which the config's ``[mx]``
    table points at), the demo panel's DNS administration (DirectAdmin's
    ``CMD_API_DNS_ADMIN``, through which the MX switch and restore go, and whose zones the
    name server answers from), and a mail host that accepts the destination check.  TXT
    records are published into the name server and the spambarrier emulator's view of DNS,
    as a real panel's zone would be seen by both."""

    def __init__(self, sandbox) -> None:
        from ..sandbox.directadmin import DirectAdminDns
        from ..sandbox.server import LoopbackServer
        from ..sandbox.smtp import SmtpAcceptor

        self.sandbox = sandbox
        self.zone = ZoneServer().__enter__()
        self.txt: dict[str, list[str]] = {}
        self.key = secrets.token_urlsafe(24)
        self.panel_api = DirectAdminDns(DNS_USER, self.key, published=self.zone.set)
        self.api_server = LoopbackServer(self.panel_api).start()
        self.smtp = SmtpAcceptor().__enter__()

    @hookimpl(tryfirst=True)
    def publish_dns_record(self, domain, record_type, name, value):
        if record_type != "TXT":
            return None
        key = name.rstrip(".").lower()
        values = self.txt.setdefault(key, [])
        if value not in values:
            values.append(value)
        self.zone.set(key, "TXT", ['"' + v.replace('"', '\\"') + '"' for v in values])
        if "spambarrier" in self.sandbox.running:
            self.sandbox["spambarrier"].emulator.seed_data({"dns": {key: [value]}})
        return True

    def stop(self) -> None:
        self.smtp.__exit__(None, None, None)
        self.api_server.stop()
        self.zone.__exit__(None, None, None)


def _process_stamp(pid: int) -> str:
    """*pid* with its start time (field 22 of /proc/PID/stat), so a reused pid never passes
    for the process that wrote it; the pid alone where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return f"{pid} {fields[19]}"
    except (OSError, IndexError):
        return str(pid)


def _running(stamp: str) -> bool:
    try:
        pid = int(stamp.split()[0])
    except (ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _process_stamp(pid) == stamp or " " not in stamp


def remove_stale(base: str | None = None) -> list[str]:
    """Remove the folders that demos of this user left when they were killed (SIGKILL gives
    a process no chance to clean up): each names its process in :data:`OWNER`, and one whose
    process is gone is removed.  The folders removed."""
    removed = []
    base = base or tempfile.gettempdir()
    for path in sorted(Path(base).glob(PREFIX + "*")):
        try:
            if not path.is_dir() or path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
            stamp = (path / OWNER).read_text(encoding="ascii").strip()
        except OSError:
            continue  # starting right now, or not a demo's
        if not _running(stamp):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


class Demo:
    """Start everything on loopback; :meth:`stop` removes it all again."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", poll: float = 0.2) -> None:
        self.host, self.port, self.poll = host, port, poll
        self.folder: Path | None = None
        self.sandbox: Any = None  # the Sandbox, once started
        self.dns: Any = None  # the DemoDns, once started
        self.server: Any = None  # the ConsoleServer, once started
        self.username = "admin"
        self.password = ""

    def config_text(
        self, state_dir: Path, panel_root: Path, password_hash: str, key_file: Path
    ) -> str:
        lines = [
            "# spamfilter-plugin demo: public emulator credentials, loopback only",
            *toml_table(
                "general",
                {"state_dir": str(state_dir), "mail_host": "127.0.0.1", "retry_base": 2.0},
            ),
            "",
            *toml_table(
                "panel",
                {
                    "kind": "directadmin",
                    "root": str(panel_root),
                    "api_url": self.dns.api_server.url,
                    "api_user": DNS_USER,
                    "api_key_file": str(key_file),
                },
            ),
            "",
            *toml_table("console", {"username": self.username, "password_hash": password_hash}),
            "",
            *toml_table(
                "mx",
                {
                    "nameservers": ["127.0.0.1"],
                    "dns_port": self.dns.zone.port,
                    "smtp_port": self.dns.smtp.port,
                    "smtp_timeout": 5.0,
                    "helo_name": "demo.localhost",
                },
            ),
        ]
        for name, running in self.sandbox.running.items():
            table = running.config_table()
            if name == MX_VENDOR:  # its MX hosts: the demo switches every domain to them
                table["mx"] = MX_HOSTS
            if name == "spamport":  # both suspension policies: SpamPort bypasses, others keep
                table["on_suspend"] = "bypass"
            if name == "rackspace":  # a visitor clicking around is not throttled
                table["rate_limit"] = running.emulator.rate_limit = DEMO_RACKSPACE_RATE
            lines += ["", *toml_table(f"vendors.{name}", table)]
        return "\n".join(lines) + "\n"

    def start(self) -> Demo:

        remove_stale()
        self.folder = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.folder / OWNER).write_text(_process_stamp(os.getpid()) + "\n", encoding="ascii")
        # the panel hook's validation cache stays with the demo's files, not the system's
        self._cache_env = os.environ.get(CACHE_ENV)
        os.environ[CACHE_ENV] = str(self.folder / "cache")
        try:
            state_dir, panel_root = self.folder / "state", self.folder / "panel"
            state_dir.mkdir(mode=0o700)
            panel_root.mkdir()
            self.sandbox = Sandbox(host=self.host, vendors=VENDORS).start()
            self.dns = DemoDns(self.sandbox)
            self.password = secrets.token_urlsafe(9)
            key_file = self.folder / "directadmin.key"
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(self.dns.key + "\n")
            config_path = self.folder / "spamfilter.toml"
            fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(
                    self.config_text(state_dir, panel_root, hash_password(self.password), key_file)
                )
            self.config_path = config_path
            self.panel = DemoPanel(
                panel_root,
                config_path,
                hosted=self.host_mailbox,
                zones=self.dns.panel_api.create_zone,
            )
            runtime = load_runtime(config_path, plugins=[("demo-dns", self.dns)])
            console, _ = console_for(runtime, host=self.host, demo=self.panel)
            self.panel.seed()
            self.server = ConsoleServer(
                console, self.host, self.port, poll=self.poll, chores=False
            ).start()  # the demo's state stays what its visitor does: no drift, no purge
        except BaseException:
            self.stop()
            raise
        return self

    def host_mailbox(self, mailbox: str, password: str) -> None:
        """The demo's mail service: the vendors that filter hosted mailboxes (Rackspace,
        Tornevall) know each mailbox the panel creates, as they would in production."""
        local, domain = mailbox.rsplit("@", 1)
        running = self.sandbox.running
        if "rackspace" in running:
            running["rackspace"].emulator.seed_data(
                {"mailboxes": [{"domain": domain, "mailbox": local}]}
            )
        if "tornevall" in running:
            running["tornevall"].emulator.seed_data({"accounts": {mailbox: password}})

    @property
    def url(self) -> str:
        return self.server.url

    def described(self) -> dict[str, Any]:
        """The console's address and login, each emulator's API address and the loopback
        name server's (what ``demo --json`` prints)."""
        return {
            "url": self.url,
            "username": self.username,
            "password": self.password,
            "emulators": {name: r.url for name, r in self.sandbox.running.items()},
            "dns": f"127.0.0.1:{self.dns.zone.port}",
        }

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.folder is not None:
            if self._cache_env is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = self._cache_env
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> Demo:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
