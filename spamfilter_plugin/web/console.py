"""What the console serves: the runtime, its login, and how it is framed."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..manager import Runtime
from .sessions import Throttle


@dataclass
class Console:
    """The runtime (vendors, config), the panel adapter (or None), the login, and in the demo
    the panel it can add to."""

    runtime: Runtime
    secret_key: bytes
    password_hash: str
    username: str = "admin"
    adapter: Any = None
    panel_origin: str = ""
    secure_cookies: bool = False
    demo: Any = None
    throttle: Throttle = field(default_factory=Throttle)

    @property
    def state_dir(self) -> Path:
        return self.runtime.config.general.state_dir

    def check_password(self, username: str, password: str) -> bool:
        name_ok = hmac.compare_digest(username.encode(), self.username.encode())
        try:
            pw_ok = bool(self.password_hash) and PasswordHasher().verify(
                self.password_hash, password
            )
        except (VerificationError, InvalidHashError):
            pw_ok = False
        return name_ok and pw_ok


def hash_password(password: str) -> str:
    """An argon2 hash for ``[console] password_hash``."""
    return PasswordHasher().hash(password)
