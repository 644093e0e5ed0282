"""A real `yolo-app monitor` process for the tests, its log read as it comes (so the pipe never fills)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from urllib.request import urlopen

from conftest import wait_for


class MonitorProcess:
    def __init__(self, config, *extra: str, env: dict | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "yolo_app", "monitor", "--config", str(config), *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def url(self, timeout: float = 120) -> str:
        """The web page's address as the monitor printed it (``http://127.0.0.1:PORT/``)."""
        def printed():
            assert self.proc.poll() is None, f"the monitor ended: {self.log[-2000:]}"
            return re.search(r"web page on (https?://\S+/)", self.log)
        return wait_for(printed, timeout, "the web page's address").group(1)

    def status(self) -> dict:
        """The monitor's status JSON (it was started with a web port)."""
        with urlopen(self.url() + "status", timeout=10) as response:
            return json.loads(response.read())

    def finish(self) -> str:
        """Stop it as SIGTERM does (clips finished, pending events published); its log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        self._reader.join(10)
        return self.log
