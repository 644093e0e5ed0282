"""The gate in front of every URL of the web page: the host it was asked for, the login, the CSRF token on
every change, and the headers that keep the page's own content from running anything it did not ship.

- Bound to the loopback, the page answers only to 127.0.0.1, localhost and [::1]: a web site whose name
  resolves to 127.0.0.1 (DNS rebinding) gets nothing.
- With a password, every URL but the login form and the style sheet needs a session (or HTTP Basic with the
  password, for scrapers and scripts); a page asked for by a browser redirects to the login, anything else
  answers 401.
- Every POST but the login's carries the CSRF token the pages hold (the session's, or the page's own without a
  password); the login checks that it was posted from this site.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yolo_app.monitor.service_config import Web, is_loopback
from yolo_app.monitor.web.auth import SESSION_COOKIE, LoginLimiter, Sessions, same_token

CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "same-origin"}
PUBLIC = ("/login", "/static/")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Guard:
    """Plain ASGI middleware (it never reads a body), so a picture or a clip passes through it unbuffered."""

    def __init__(self, app: ASGIApp, settings: Web, sessions: Sessions, limiter: LoginLimiter) -> None:
        self.app = app
        self.settings, self.sessions, self.limiter = settings, sessions, limiter
        self.page_csrf = secrets.token_urlsafe(32)  # without a password: the token every page of this run holds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        refusal = await self._check(Request(scope))  # its state (session, CSRF token) is the handlers' too
        await (refusal or self.app)(scope, receive, send_with_headers)

    async def _check(self, request: Request) -> Response | None:
        """A refusal, or None to go on (``request.state`` then has the session and the CSRF token)."""
        if self.settings.local_only and not is_loopback(host_name(request.headers.get("host", ""))):
            return PlainTextResponse("this page answers to 127.0.0.1 and localhost only\n", 403)
        path, method = request.url.path, request.method
        session = None
        if self.settings.password is not None:
            session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        request.state.session = session
        request.state.csrf = session.csrf if session is not None else self.page_csrf
        if self.settings.password is not None and session is None and not path.startswith(PUBLIC):
            if not await self._basic_auth(request):
                if method == "GET" and "text/html" in request.headers.get("accept", ""):
                    return RedirectResponse(f"/login?next={request.url.path}", 303)
                return PlainTextResponse("log in first\n", 401)
        if method in ("GET", "HEAD"):
            return None
        if path == "/login":
            origin = request.headers.get("origin")
            if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
                return PlainTextResponse("a login must come from this page\n", 403)
            return None
        if not same_token(request.headers.get("x-csrf-token"), request.state.csrf):
            return PlainTextResponse("missing or wrong CSRF token (reload the page)\n", 403)
        return None

    async def _basic_auth(self, request: Request) -> bool:
        """``Authorization: Basic`` with any user name and the password; wrong ones count toward the limit."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        address = client_address(request)
        if self.limiter.wait_s(address) > 0:
            return False
        try:
            password = base64.b64decode(header[6:], validate=True).decode().split(":", 1)[1]
        except (binascii.Error, UnicodeDecodeError, IndexError):
            return False
        if await run_in_threadpool(self.settings.password.verify, password):
            return True
        self.limiter.failed(address)
        return False
