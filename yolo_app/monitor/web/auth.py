"""Who may use the web page: the password (kept only as a salted scrypt hash), login sessions, CSRF tokens and
the login rate limit.

Without a password (the page bound to the loopback) there is no login, but changes still need the page's CSRF
token: another site open in the same browser could otherwise post to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

SESSION_COOKIE = "yolo_app_session"
SESSION_S = 7 * 86400  # a login lasts a week from its last use
MAX_SESSIONS = 1000  # the oldest are dropped beyond this (a password guesser cannot fill memory: it never logs in)
FAILURES_ALLOWED = 5  # wrong passwords from one address in LOCKOUT_S, before it must wait
LOCKOUT_S = 60.0


@dataclass(frozen=True)
class PasswordHash:
    salt: bytes = field(repr=False)
    digest: bytes = field(repr=False)

    @staticmethod
    def _scrypt(password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)  # ~16 MB, ~50 ms

    @classmethod
    def of(cls, password: str) -> PasswordHash:
        salt = secrets.token_bytes(16)
        return cls(salt, cls._scrypt(password, salt))

    def verify(self, password: str) -> bool:
        return hmac.compare_digest(self._scrypt(password, self.salt), self.digest)


@dataclass
class Session:
    csrf: str
    expires: float


class Sessions:
    """Logged-in browsers: a random token in an HttpOnly cookie, each with its own CSRF token (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self) -> tuple[str, Session]:
        token, session = secrets.token_urlsafe(32), Session(secrets.token_urlsafe(32), self._clock() + SESSION_S)
        with self._lock:
            self._sessions[token] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The session of a cookie that is still good, its week renewed; None otherwise."""
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires <= self._clock():
                del self._sessions[token]
                return None
            session.expires = self._clock() + SESSION_S
            self._sessions.move_to_end(token)
            return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


class LoginLimiter:
    """At most ``FAILURES_ALLOWED`` wrong passwords per address in ``LOCKOUT_S``; then it waits out the window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, address: str) -> float:
        """Seconds before ``address`` may try again (0: now)."""
        now = self._clock()
        with self._lock:
            recent = [t for t in self._failures.get(address, []) if now - t < LOCKOUT_S]
            if recent:
                self._failures[address] = recent
            else:
                self._failures.pop(address, None)
            return LOCKOUT_S - (now - recent[0]) if len(recent) >= FAILURES_ALLOWED else 0.0

    def failed(self, address: str) -> None:
        with self._lock:
            if len(self._failures) > 10_000:  # a flood from many addresses: forget the oldest windows
                self._failures.clear()
            self._failures.setdefault(address, []).append(self._clock())

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())
