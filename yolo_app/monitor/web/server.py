"""The web page's server: uvicorn on its own thread with its own event loop, bound before ``start`` returns
(a port in use or a bad certificate is the user's one-line error, not a thread's traceback), stopped within a
few seconds by ``stop``."""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading

import uvicorn

from yolo_app.errors import UserError
from yolo_app.monitor.service_config import Web
from yolo_app.monitor.web.app import Site, build_app

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 200  # beyond this uvicorn answers 503: a crowd of browsers cannot take the monitor's memory


class WebServer:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.settings: Web = site.settings
        self.port = self.settings.port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.settings.bind if ":" not in self.settings.bind else f"[{self.settings.bind}]"
        host = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host
        return f"{'https' if self.settings.tls else 'http'}://{host}:{self.port}/"

    def start(self) -> None:
        sock = self._bind()
        tls = self.settings.tls
        config = uvicorn.Config(
            build_app(self.site), log_config=None, log_level="warning", access_log=False, lifespan="off",
            timeout_keep_alive=5, timeout_graceful_shutdown=2, limit_concurrency=MAX_CONNECTIONS,
            ssl_certfile=str(tls.cert) if tls else None, ssl_keyfile=str(tls.key) if tls else None)
        try:
            config.load()
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise UserError(f"web.tls: cannot use {tls.cert} and {tls.key}: {exc}") from None
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="web-server",
                                        daemon=True)
        self._thread.start()

    def _bind(self) -> socket.socket:
        bind = "127.0.0.1" if self.settings.bind == "localhost" else self.settings.bind
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind.strip("[]"), self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"web port {self.port} is in use") from None
            raise UserError(f"web: cannot listen on {bind}:{self.port}: {exc.strerror or exc}") from None
        sock.set_inheritable(True)
        self.port = sock.getsockname()[1]
        return sock

    def stop(self, timeout: float = 5.0) -> None:
        """Stops serving: open requests get up to 2 s to finish, the thread is joined within ``timeout``."""
        server, self._server = self._server, None
        if server is None:
            return
        server.should_exit = True  # the server's loop looks every 0.1 s
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the web server did not stop in %.0f s", timeout)
        self.site.browser.close()
