"""Does a destination accept mail for a domain?

Before a domain's MX records are switched to a filter, the host the filter will pass clean
mail to (the destination) must accept mail for the domain; otherwise the filter accepts
mail it cannot deliver, and senders hear of it hours later.  :func:`probe` holds the
conversation a relay would: connect, ``EHLO`` (``HELO`` if refused), ``MAIL FROM:<>``,
``RCPT TO:<postmaster@domain>`` and ``QUIT``.  It never sends ``DATA``, so no mail is
sent.  Every step is bounded by *timeout*, and a host that does not answer is a result,
not a hang.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass

#: the standard SMTP port: where a relay delivers
SMTP_PORT = 25


@dataclass(frozen=True)
class Probe:
    """What the destination said.

    ``accepted`` is True only when it took ``RCPT TO:<postmaster@domain>``.  ``code`` and
    ``reply`` are the last SMTP reply (``550``, ``"5.1.1 no such user"``), or None and the
    reason when no SMTP reply came (refused connection, timeout, not an SMTP server)."""

    host: str
    port: int
    accepted: bool
    code: int | None
    reply: str
    step: str

    def __str__(self) -> str:
        where = f"{self.host}:{self.port}"
        if self.accepted:
            return f"{where} accepts mail for the domain ({self.code} {self.reply})".strip()
        if self.code is None:
            return f"{where} did not answer at {self.step}: {self.reply}"
        return f"{where} refused {self.step}: {self.code} {self.reply}".strip()


def _text(message: bytes | str) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return " ".join(message.split())[:300]


def probe(
    host: str,
    domain: str,
    *,
    port: int = SMTP_PORT,
    timeout: float = 10.0,
    helo_name: str | None = None,
) -> Probe:
    """Ask *host* whether it accepts mail for ``postmaster@`` *domain* (never sending any).

    *helo_name* is the name to greet with (this server's host name by default)."""
    step = "connect"
    server = smtplib.SMTP(timeout=timeout, local_hostname=helo_name)
    try:
        code, message = server.connect(host, port)
        if code != 220:
            return Probe(host, port, False, code, _text(message), "the greeting")
        step = "EHLO"
        code, message = server.ehlo()
        if not 200 <= code < 300:
            step = "HELO"
            code, message = server.helo()
            if not 200 <= code < 300:
                return Probe(host, port, False, code, _text(message), step)
        step = "MAIL FROM:<>"
        code, message = server.mail("")
        if not 200 <= code < 300:
            return Probe(host, port, False, code, _text(message), step)
        step = f"RCPT TO:<postmaster@{domain}>"
        code, message = server.rcpt(f"postmaster@{domain}")
        accepted = 200 <= code < 300
        return Probe(host, port, accepted, code, _text(message), step)
    except TimeoutError:
        return Probe(host, port, False, None, f"no answer within {timeout:g}s", step)
    except smtplib.SMTPServerDisconnected as exc:
        if isinstance(exc.__context__, TimeoutError):  # smtplib words a timeout this way
            return Probe(host, port, False, None, f"no answer within {timeout:g}s", step)
        return Probe(host, port, False, None, f"the connection was closed ({exc})", step)
    except (OSError, smtplib.SMTPException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Probe(host, port, False, None, _text(reason or type(exc).__name__), step)
    finally:
        try:
            server.quit()
        except (OSError, smtplib.SMTPException):
            server.close()
