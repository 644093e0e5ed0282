"""For the web page's tests: a real browser (Debian's Chromium, driven by Selenium through Debian's
chromedriver), raw HTTP requests that no client tidies up first, and the page's server in this process on a
database the test fills."""

from __future__ import annotations

import http.client
import shutil
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from yolo_app.monitor.service_config import Web
from yolo_app.monitor.events import EventStore
from yolo_app.monitor.web.app import Site
from yolo_app.monitor.web.live import LivePictures
from yolo_app.monitor.web.queries import EventBrowser
from yolo_app.monitor.web.server import WebServer

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def chromium(width: int = 1280, height: int = 800, phone: bool = False):
    """Headless Chromium; missing, the test fails naming the packages (.ci/run installs them)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file() and shutil.which(Path(p).name) is None]
    assert not missing, ("Debian's chromium and chromium-driver are not installed: the web page's tests drive a real "
                         "browser (sudo apt install chromium chromium-driver; .ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # No background networking: this machine's closed network refuses it, and the tests must not wait on it.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", f"--window-size={width},{height}"):
        options.add_argument(flag)
    if phone:
        options.add_experimental_option("mobileEmulation",
                                        {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2}})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def until(driver, condition, timeout: float, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, f"timed out waiting for {what}")


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
            tls: ssl.SSLContext | None = None) -> tuple[int, dict, bytes]:
    """One request with the path sent exactly as given (``/files/../x`` stays so: urllib would tidy it)."""
    conn = (http.client.HTTPSConnection("127.0.0.1", port, timeout=20, context=tls) if tls
            else http.client.HTTPConnection("127.0.0.1", port, timeout=20))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


class StillCamera:
    """A camera for the page's server in this process: one frame, drawn as it is."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.latest = SimpleNamespace(frame=SimpleNamespace(captured_at=time.monotonic()))

    def render(self, result) -> np.ndarray:
        return self.image


@dataclass
class LocalSite:
    server: WebServer
    store: EventStore
    storage: Path

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        self.server.stop()
        self.store.close()


def local_site(storage: Path, settings: Web = Web(port=0), snapshot=lambda: {"cameras": {}},
               cameras: dict | None = None, counts=lambda: {}) -> LocalSite:
    """The page's server on ``storage/events.db`` (made if missing), started."""
    storage.mkdir(parents=True, exist_ok=True)
    store = EventStore(storage / "events.db")
    cameras = cameras or {}
    server = WebServer(Site(settings, storage, snapshot, store, EventBrowser(store.path),
                            LivePictures(cameras, settings.live_fps), counts))
    server.start()
    return LocalSite(server, store, storage)
