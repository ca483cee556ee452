"""Serving the console: waitress on a loopback (or password-protected) address, and the
worker in the same process."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from ..errors import ConfigError
from ..worker import Worker, chores_every
from .access import console_key
from .app import create_app
from .console import Console, hash_password

log = logging.getLogger("spamfilter_plugin.web")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def console_for(runtime, *, host: str, demo=None):
    """The :class:`~.app.Console` for *runtime*'s config; with no ``password_hash`` on a
    loopback address, a password made for this run (returned second, else None).
    ConfigError when a non-loopback address has no password set."""

    conf = runtime.config.console
    one_time = None
    password_hash = conf["password_hash"]
    if not password_hash:
        if not is_loopback(host):
            raise ConfigError(
                f"--host {host} is not a loopback address and [console] password_hash is not "
                "set: anyone who reaches it could change filter settings. Set a password "
                "(spamfilter serve --hash-password) or serve on 127.0.0.1"
            )
        one_time = secrets.token_urlsafe(12)
        password_hash = hash_password(one_time)
    state_dir = runtime.config.general.state_dir
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    console = Console(
        runtime=runtime,
        secret_key=console_key(state_dir),
        password_hash=password_hash,
        username=conf["username"],
        adapter=runtime.panel_adapter,
        panel_origin=conf["panel_origin"],
        secure_cookies=conf["public_url"].startswith("https:"),
        demo=demo,
    )
    return console, one_time


@dataclass
class Served:
    url: str
    stop: threading.Event


class ConsoleServer:
    """The app under waitress, in a thread; the worker in another unless *worker* is off."""

    def __init__(
        self, console, host: str, port: int, *, worker: bool = True, poll=1.0, chores=True
    ) -> None:

        self.console = console
        # waitress's server, whose internals stop() uses (its trigger, task dispatcher, map)
        self.server: Any = create_server(
            create_app(console), host=host, port=port, threads=8, ident="spamfilter-console"
        )
        self.host = host
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._serve, name="console", daemon=True)]
        if worker:
            self.threads.append(
                threading.Thread(target=self._work, args=(poll,), name="worker", daemon=True)
            )
        if chores:  # the features' periodic work (alerts too), with or without the worker
            self.threads.append(
                threading.Thread(
                    target=chores_every,
                    args=(console.runtime, self.stopping),
                    name="chores",
                    daemon=True,
                )
            )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.server.effective_port}/"

    def _serve(self) -> None:
        try:
            self.server.run()
        except OSError:  # closed while stopping
            if not self.stopping.is_set():
                raise

    def _work(self, poll: float) -> None:

        worker = Worker(self.console.runtime)
        try:
            worker.run_forever(self.stopping, poll=poll)
        except Exception:
            log.exception("the worker stopped")
        finally:
            worker.queue.close()

    def start(self) -> ConsoleServer:
        for thread in self.threads:
            thread.start()
        return self

    def _in_loop(self, action) -> None:
        """Run *action* in the server's loop thread (through its trigger).  A trigger
        already closed means the loop has closed everything with it and ended: nothing is
        left to do there (a socket closed twice is what this avoids)."""
        try:
            self.server.trigger.pull_trigger(action)
        except OSError:
            log.debug("the console's loop had already closed its connections")

    def stop(self, grace: float = 3.0) -> None:
        """Stop serving without cutting off what is in flight: stop taking connections, let
        the requests being served finish (up to *grace* seconds) and their answers go out,
        then close every connection; then stop the worker.  Everything that touches the
        server's sockets runs in its own loop thread (through its trigger), so no request
        thread ever writes to a closed socket."""

        self.stopping.set()
        server = self.server
        self._in_loop(lambda: wasyncore.dispatcher.close(server))
        tasks = server.task_dispatcher
        deadline = time.monotonic() + grace
        while (tasks.queue or tasks.active_count) and time.monotonic() < deadline:
            time.sleep(0.02)
        tasks.shutdown(timeout=grace)
        while time.monotonic() < deadline and any(
            getattr(channel, "total_outbufs_len", 0) for channel in list(server._map.values())
        ):
            time.sleep(0.02)
        self._in_loop(lambda: wasyncore.close_all(server._map))
        for thread in self.threads:
            thread.join(timeout=10)
