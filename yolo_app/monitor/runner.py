"""The monitor: every camera (monitor/camera.py) on one detector, and the shared services: the event store,
webhooks, the MQTT way out, retention and the web page (with the status JSON and the metrics).

Every thread stops within a few seconds of ``stop()``; open clips are finished first.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Callable

from yolo_app.engine.models import LoadedModel
from yolo_app.engine.shared import SharedDetector
from yolo_app.engine.sinks import Sink
from yolo_app.factory import build_detector
from yolo_app.monitor.alerts import WebhookSender
from yolo_app.monitor.camera import POLL_S, CameraMonitor
from yolo_app.monitor.config import MonitorConfig, check_classes
from yolo_app.monitor.events import Event, EventStore, iso, utc_now
from yolo_app.monitor.mqtt import CURSOR as MQTT_CURSOR
from yolo_app.monitor.mqtt import MqttOutlet
from yolo_app.monitor.retention import RetentionWorker
from yolo_app.monitor.web.app import Site
from yolo_app.monitor.web.live import LivePictures
from yolo_app.monitor.web.queries import EventBrowser
from yolo_app.monitor.web.server import WebServer

log = logging.getLogger(__name__)


class Monitor:
    def __init__(self, config: MonitorConfig, model: LoadedModel | None = None,
                 display: Callable[[CameraMonitor], Sink] | None = None) -> None:
        """``model``: already loaded (a restart keeps it); ``display``: a sink per camera that sees every
        frame too (the GUI's view, drawn with the camera's ``render``)."""
        self.config = config
        ready = build_detector(config.model, config.detection, classify=config.classify, loaded=model,
                               check_names=lambda names: check_classes(config, names))
        self.model, classifier = ready.detector.model, ready.classifier
        config.storage.mkdir(parents=True, exist_ok=True)
        self.store = EventStore(config.storage / "events.db")
        self.webhooks = WebhookSender()
        self.retention = RetentionWorker(config.storage, self.store, config.retention.days, config.retention.max_gb)
        self.listeners: list[Callable[[Event], None]] = []  # called on the camera's thread (GUI: a signal)
        self.events_total = 0
        self.started_at = utc_now()
        self._running = False
        self._started = time.monotonic()
        base = ready.detector.settings
        # One network for every camera: their frames share calls (a CUDA batch, the CPU backend's streams together).
        self.shared = SharedDetector(ready.detector) if config.inference == "shared" else None
        self.cameras = {
            cam.name: CameraMonitor(cam, self.model, dataclasses.replace(
                base, classes=self.model.class_ids(list(cam.classes)) if cam.classes else None),
                self.store, config, self.webhooks, self._on_event, classifier, self.shared)
            for cam in config.cameras
        }
        if display is not None:
            for camera in self.cameras.values():
                camera.displays.append(display(camera))
        # The ways out beside the webhooks, fed from the store's change log (monitor/events.py).
        self.store.keep_cursors({MQTT_CURSOR} if config.mqtt is not None else set())
        self.mqtt = MqttOutlet(config.mqtt, self.store, self.cameras) if config.mqtt is not None else None
        self.web = WebServer(Site(
            config.web, config.storage, self.snapshot, self.store, EventBrowser(self.store.path),
            LivePictures(self.cameras, config.web.live_fps),
            lambda: {name: cam.counts() for name, cam in self.cameras.items()})) if config.web is not None else None

    def _on_event(self, event: Event) -> None:
        self.events_total += 1
        log.info("%s %s%s%s", event.camera, event.type, f" {event.label}#{event.track_id}" if event.label else "",
                 f" {event.zone}" + (f" {event.direction}" if event.direction else "") if event.zone else "")
        for listener in list(self.listeners):
            listener(event)

    def start(self) -> None:
        if self.web is not None:  # first: a port in use stops the start before any camera opens
            self.web.start()
        self._running = True
        self.webhooks.start()
        if self.mqtt is not None:
            self.mqtt.start()
        self.retention.start()
        if self.shared is not None:
            self.shared.start()
        for camera in self.cameras.values():
            camera.start()

    @property
    def all_ended(self) -> bool:
        return all(c.ended for c in self.cameras.values())

    def wait(self, run_for: float | None = None, stop: threading.Event | None = None) -> None:
        """Block until ``run_for`` passes, ``stop`` is set, or every camera has ended (files)."""
        deadline = None if run_for is None else time.monotonic() + run_for
        stop = stop or threading.Event()
        while not stop.is_set() and not self.all_ended:
            if deadline is not None and time.monotonic() >= deadline:
                return
            stop.wait(POLL_S)

    def stop(self, timeout: float = 10.0) -> None:
        for camera in self.cameras.values():
            camera.stop()
        deadline = time.monotonic() + timeout
        for camera in self.cameras.values():
            if not camera.join(max(0.1, deadline - time.monotonic())):
                log.warning("camera %s did not stop in time", camera.cam.name)
        if self.shared is not None:  # after the cameras: frames they still had were served
            self.shared.stop()
            self.shared.join(max(0.1, deadline - time.monotonic()))
        if self._running:
            self.retention.stop()
            self.webhooks.close(timeout=max(1.0, deadline - time.monotonic()))
            if self.mqtt is not None:  # what it had not published yet waits in the store for the next start
                self.mqtt.close(timeout=max(5.0, deadline - time.monotonic()))
            if self.web is not None:
                self.web.stop()
        self.store.close()

    def inference_stats(self) -> dict:
        """Shared: how many frames each network call carried on average (1.0: the cameras never overlapped)."""
        if self.shared is None:
            return {"mode": "per_camera"}
        calls = self.shared.served_calls
        return {"mode": "shared", "calls": calls,
                "frames_per_call": round(self.shared.served_frames / calls, 2) if calls else None}

    def snapshot(self) -> dict:
        today = iso(datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0))
        per_camera = self.store.count_since(today)
        return {
            "started_at": self.started_at, "uptime_s": round(time.monotonic() - self._started, 1),
            "cameras": {name: cam.status(per_camera.get(name, 0)) for name, cam in self.cameras.items()},
            "webhooks": self.webhooks.stats(),
            **({"mqtt": dataclasses.asdict(self.mqtt.stats())} if self.mqtt is not None else {}),
            "inference": self.inference_stats(),
            "events_total": self.events_total,
        }
