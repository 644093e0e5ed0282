"""Health endpoint on localhost: the monitor's status as JSON, and as Prometheus text metrics.

``GET /`` or ``/status``: ``snapshot()`` as JSON. ``GET /metrics``: the same snapshot in the text
exposition format 0.0.4. The snapshot is taken per request on the server's threads, so ``snapshot``
must be thread-safe and quick (it reads counters; it never waits on capture or inference).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from yolo_app.errors import UserError, describe

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CAMERA_STATES = ("starting", "running", "reconnecting", "offline", "ended")

# Per camera: (metric, type, snapshot key, help).
CAMERA_METRICS = (
    ("yolo_app_camera_fps", "gauge", "fps", "Frames read per second."),
    ("yolo_app_camera_last_frame_age_seconds", "gauge", "last_frame_age_s", "Seconds since the last frame."),
    ("yolo_app_camera_events_today", "gauge", "events_today", "Events since midnight UTC."),
    ("yolo_app_camera_motion_skipped_ratio", "gauge", "motion_skipped_fraction",
     "Fraction of frames not sent to inference for lack of motion."),
    ("yolo_app_camera_reconnects_total", "counter", "reconnects", "Stream reconnections."),
    ("yolo_app_camera_dropped_frames_total", "counter", "dropped", "Frames dropped before inference."),
    ("yolo_app_camera_last_outage_seconds", "gauge", "last_outage_s", "How long the last outage lasted."),
)
WEBHOOK_METRICS = (
    ("yolo_app_webhooks_sent_total", "sent", "Webhook deliveries that succeeded."),
    ("yolo_app_webhooks_failed_total", "failed", "Webhook deliveries given up (15 minutes of failures)."),
    ("yolo_app_webhooks_retried_total", "retried", "Webhook attempts made after a failure."),
    ("yolo_app_webhooks_dropped_total", "dropped", "Webhook deliveries dropped (queue full or shutdown)."),
)

MQTT_METRICS = (
    ("yolo_app_mqtt_connected", "gauge", "connected", "1 while connected to the MQTT broker, else 0."),
    ("yolo_app_mqtt_published_total", "counter", "published", "Events the broker acknowledged."),
    ("yolo_app_mqtt_pending", "gauge", "pending", "Events recorded and not yet acknowledged by the broker."),
)


def render_metrics(snapshot: dict) -> str:
    """The snapshot as Prometheus text; a value missing or None is left out rather than invented."""
    out: list[str] = []
    _family(out, "yolo_app_uptime_seconds", "gauge", "Seconds since the monitor started.",
            [({}, snapshot.get("uptime_s"))])
    _family(out, "yolo_app_events_total", "counter", "Events in the database.", [({}, snapshot.get("events_total"))])
    cameras = snapshot.get("cameras") or {}
    _family(out, "yolo_app_camera_up", "gauge", "1 while the camera delivers frames, else 0.",
            [({"camera": name}, int(cam.get("state") == "running")) for name, cam in cameras.items()])
    _family(out, "yolo_app_camera_state", "gauge", "1 for the camera's current state.",
            [({"camera": name, "state": state}, int(cam.get("state") == state))
             for name, cam in cameras.items() for state in CAMERA_STATES])
    for metric, kind, key, help_text in CAMERA_METRICS:
        _family(out, metric, kind, help_text, [({"camera": name}, cam.get(key)) for name, cam in cameras.items()])
    webhooks = snapshot.get("webhooks") or {}
    for metric, key, help_text in WEBHOOK_METRICS:
        _family(out, metric, "counter", help_text, [({}, webhooks.get(key))])
    mqtt = snapshot.get("mqtt")
    if mqtt is not None:  # only where the config has an mqtt section
        for metric, kind, key, help_text in MQTT_METRICS:
            _family(out, metric, kind, help_text, [({"broker": mqtt["broker"]}, int(mqtt[key]))])
    return "".join(out)


def _family(out: list[str], name: str, kind: str, help_text: str, samples: list[tuple[dict, object]]) -> None:
    lines = [f"{name}{_labels(labels)} {_number(value)}\n" for labels, value in samples if _is_number(value)]
    if lines:
        out.append(f"# HELP {name} {_escape_help(help_text)}\n")
        out.append(f"# TYPE {name} {kind}\n")
        out.extend(lines)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{escape_label(str(value))}"' for key, value in labels.items()) + "}"


def escape_label(value: str) -> str:
    """Backslash, double quote and line feed, escaped as the exposition format asks."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float))  # bool too: True is 1


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], snapshot: Callable[[], dict]) -> None:
        self.snapshot = snapshot
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that connects and says nothing cannot hold a thread for ever
    server_version = "yolo_app-status"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path not in ("/", "/status", "/metrics"):
            self._reply(404, "text/plain; charset=utf-8", f"not found: {path}\n")
            return
        try:
            snap = self.server.snapshot()
            if path == "/metrics":
                body, ctype = render_metrics(snap), METRICS_CONTENT_TYPE
            else:
                body, ctype = json.dumps(snap, default=str) + "\n", "application/json"
        except Exception as exc:  # a bad snapshot is a bug to report, not a reason to stop serving
            log.warning("status snapshot failed: %s", describe(exc))
            self._reply(500, "text/plain; charset=utf-8", f"status snapshot failed: {describe(exc)}\n")
            return
        self._reply(200, ctype, body)

    def _reply(self, code: int, content_type: str, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # not to stderr: the CLI owns the terminal
        log.debug("status %s: %s", self.address_string(), format % args)


class StatusServer:
    """Serves on ``127.0.0.1:port`` (0: an ephemeral port, read ``.port`` after ``start()``)."""

    def __init__(self, port: int, snapshot: Callable[[], dict]) -> None:
        self.port = port
        self.snapshot = snapshot
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._server = _Server(("127.0.0.1", self.port), self.snapshot)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"status port {self.port} is in use") from None
            raise UserError(f"status port {self.port}: {exc.strerror or exc}") from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="status-server", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stops serving within ``timeout``; requests in flight end on their daemon threads."""
        if self._server is None:
            return
        server, self._server = self._server, None
        if self._thread is not None and self._thread.is_alive():
            server.shutdown()  # returns once serve_forever has seen the flag: <= poll_interval
            self._thread.join(timeout)
        server.server_close()
