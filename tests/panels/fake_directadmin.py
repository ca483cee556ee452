"""A fake DirectAdmin answering ``CMD_API_DNS_ADMIN`` on loopback, written from the API's
documentation (changelog 1.24.2 and the legacy API page): basic authentication with a
login key; GET ``domain`` gives the raw zone; POST ``action=add`` (``type``, ``name``,
``value``; MX also ``mx_value``) and ``action=select`` with ``mxrecs0`` / ``txtrecs0`` =
``name=...&value=...`` answer ``error=0&text=...&details=`` or ``error=1&...``.  The zones
are fake_zones.py's."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import fake_zones


def _absolute(name, domain):
    if name in ("", "@"):
        return f"{domain}."
    return name if name.endswith(".") else f"{name}.{domain}."


class FakeDirectAdmin:
    def __init__(self, base, user="admin", key="login-key"):
        self.base, self.user, self.key, self.calls = base, user, key, []
        self.faults: dict[str, bool] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, text):
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, params):
                import base64

                auth = self.headers.get("Authorization", "")
                expected = base64.b64encode(f"{outer.user}:{outer.key}".encode()).decode()
                if auth != f"Basic {expected}":
                    return self._reply(401, "unauthorized")
                if urlsplit(self.path).path != "/CMD_API_DNS_ADMIN":
                    return self._reply(404, "no such command")
                outer.calls.append((self.command, params))
                self._reply(200, outer.answer(self.command, params))

            def do_GET(self):
                query = parse_qs(urlsplit(self.path).query)
                self._handle({k: v[0] for k, v in query.items()})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                self._handle({k: v[0] for k, v in form.items()})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def error(text, details=""):
        return urlencode({"error": 1, "text": text, "details": details})

    def answer(self, method, params):
        domain = params.get("domain", "")
        zone = fake_zones.load(self.base, domain)
        if zone is None:
            return self.error("Cannot View Dns Record", f"{domain} does not exist")
        action = params.get("action")
        if method == "GET" and action is None:
            return fake_zones.zone_text(domain, zone)
        if action == "add":
            if self.faults.get("add_keeps_nothing"):  # a broken panel: says so, keeps nothing
                return urlencode({"error": 0, "text": "Records changed", "details": ""})
            rtype, name = params.get("type", ""), params.get("name", "")
            if rtype == "MX":
                if not params.get("value", "").isdigit() or not params.get("mx_value"):
                    return self.error("Cannot add record", "MX needs value (priority), mx_value")
                host = _absolute(params["mx_value"], domain)
                values = [params["value"], host]
            elif rtype == "TXT":
                values = [params.get("value", "").strip('"')]
            else:
                return self.error("Cannot add record", f"type {rtype!r}")
            zone["records"].append(
                {"name": _absolute(name, domain), "type": rtype, "values": values}
            )
        elif action == "select":
            selected = [(k, v) for k, v in params.items() if k[:-1] in ("mxrecs", "txtrecs")]
            if not selected:
                return self.error("Cannot delete records", "nothing selected")
            for key, value in selected:
                rtype = "MX" if key.startswith("mx") else "TXT"
                rec = {k: v[0] for k, v in parse_qs(value, keep_blank_values=True).items()}
                name = _absolute(rec.get("name", ""), domain)
                raw = rec.get("value", "")
                if rtype == "MX":
                    priority, _, host = raw.partition(" ")
                    values = [priority, _absolute(host, domain)]
                else:
                    values = [raw.strip('"')]
                wanted = {"name": name, "type": rtype, "values": values}
                if wanted not in zone["records"]:
                    return self.error("Cannot delete records", f"no record {value}")
                zone["records"].remove(wanted)
        else:
            return self.error("Unknown action", str(action))
        zone["serial"] += 1
        fake_zones.save(self.base, domain, zone)
        return urlencode({"error": 0, "text": "Records changed", "details": ""})

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
