"""The monitor: every camera's engine pipeline, its zones, lines and evidence, and the shared services.

    CameraMonitor (one thread per camera)  -- opens the source, runs an engine Pipeline on it with a
        tracker and the motion gate, reopens it with back-off when it drops, marks it offline/online
      MonitorSink (the pipeline's sink thread)  -- zones, lines, events, snapshots, clip frames
    Monitor  -- the model, the event store, webhooks, retention and the status page

A camera's frames take the newest-wins path (a live view must not lag); events are written as they
happen. Every thread stops within a few seconds of ``stop()``; open clips are finished first.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from yolo_app.engine.capture import Playback
from yolo_app.engine.classify import Stage
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.models import LoadedModel
from yolo_app.engine.pipeline import Branch, Pipeline
from yolo_app.engine.readers import FrameReader, open_reader
from yolo_app.engine.render import FrameRenderer
from yolo_app.engine.sinks import Sink
from yolo_app.engine.sources import parse_source
from yolo_app.engine.tracking import Tracker
from yolo_app.engine.types import FramePolicy, Result
from yolo_app.errors import describe
from yolo_app.factory import build_detector
from yolo_app.monitor.alerts import WebhookSender
from yolo_app.monitor.config import Camera, Line, MonitorConfig, Zone, check_classes
from yolo_app.monitor.events import Event, EventStore, iso, utc_now
from yolo_app.monitor.evidence import EvidenceRecorder
from yolo_app.monitor.motion import MotionGate
from yolo_app.monitor.overlay import draw_geometry
from yolo_app.monitor.retention import RetentionWorker
from yolo_app.monitor.status import StatusServer
from yolo_app.monitor.zones import Crossing, LineCounter, ZoneWatcher

log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 30.0)  # reopening a dropped source: 1 s, 2 s, 4 s ... at most 30 s between tries
POLL_S = 0.2


class CameraState:
    STARTING = "starting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    ENDED = "ended"  # a file that does not loop has played to its end


def classification_of(result: Result, track_id: int) -> str | None:
    """``"sports car 0.72"``: the second stage's label for the tracked object, when a classifier runs."""
    d = result.detections
    column = d.data.get("classification")
    if column is None or d.tracker_id is None:
        return None
    for tid, value in zip(d.tracker_id, column):
        if int(tid) == track_id and value:
            return f"{value['label']} {value['confidence']:.2f}"
    return None


class MonitorSink(Sink):
    """The pipeline's last stage for a camera; runs on its own thread, sees every inferred frame."""

    policy = FramePolicy.ALL  # events must not be lost between inference and here
    name = "monitor"

    def __init__(self, camera: CameraMonitor) -> None:
        self.camera = camera

    def write(self, result: Result) -> None:
        self.camera.on_result(result)


class CameraMonitor:
    def __init__(self, cam: Camera, model: LoadedModel, settings: DetectionSettings, store: EventStore,
                 config: MonitorConfig, webhooks: WebhookSender, emit: Callable[[Event], None],
                 classifier: Stage | None = None) -> None:
        self.cam = cam
        self.classifier = classifier
        self.model = model
        self.settings = settings
        self.store = store
        self.webhooks = webhooks
        self._emit = emit
        self.zones = [ZoneWatcher(z) for z in cam.zones]
        self.lines = [LineCounter(ln) for ln in cam.lines]
        self.gate = MotionGate(cam.motion.threshold, cam.motion.cooldown_s) if cam.motion.enabled else None
        pre = max((a.clip.pre for a in cam.alerts if a.clip), default=0.0)
        self.evidence = EvidenceRecorder(cam.name, config.storage, store, pre)
        self.wants_seen = any(a.on == "object_seen" for a in cam.alerts)
        self.state = CameraState.STARTING
        self.frames = 0
        self.reconnects = 0
        self.dropped = 0
        self.latest: Result | None = None  # for the GUI: the newest result, replaced, never queued
        self._seen_tracks: set[int] = set()
        self._renderer: FrameRenderer | None = None
        self._waiting_since = time.monotonic()  # no frame yet: offline counts from here
        self._last_frame_at: float | None = None
        self._pipeline: Pipeline | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera:{cam.name}", daemon=True)
        self._lock = threading.Lock()  # zone/line state: the sink thread writes, the GUI and status read

    # lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        if self._thread.ident is None:  # never started
            self.evidence.close()
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def ended(self) -> bool:
        return not self._thread.is_alive() and self._thread.ident is not None

    def _run(self) -> None:
        delay = BACKOFF_S[0]
        try:
            while not self._stop.is_set():
                reader = self._open()
                if reader is None:
                    self._wait(delay)
                    delay = min(delay * 2, BACKOFF_S[1])
                    continue
                frames_before = self.frames
                if self._play(reader):  # the source ended for good (a file) or we were stopped
                    return
                if self.frames > frames_before:
                    delay = BACKOFF_S[0]  # it worked for a while: start the back-off again
                if self.state != CameraState.OFFLINE:
                    self.state = CameraState.RECONNECTING
                self.reconnects += 1
                self._wait(delay)
                delay = min(delay * 2, BACKOFF_S[1])
        except Exception as exc:  # noqa: BLE001 - one camera's bug must not end the others; it is logged
            log.error("camera %s stopped: %s", self.cam.name, describe(exc))
        finally:
            self.evidence.close()
            if self.state != CameraState.OFFLINE:
                self.state = CameraState.ENDED

    def _open(self) -> FrameReader | None:
        try:
            return open_reader(parse_source(self.cam.source)[0])
        except Exception as exc:  # noqa: BLE001 - any failure to open means try again later
            log.info("camera %s unavailable (%s); next try with back-off", self.cam.name, describe(exc))
            if self.state == CameraState.RUNNING:
                self.state = CameraState.RECONNECTING
            self._check_offline()
            return None

    def _play(self, reader: FrameReader) -> bool:
        """Run one pipeline until the source drops (False) or ends / we stop (True)."""
        live = reader.info.live
        detector = Detector(self.model, self.settings)
        tracker = Tracker(reader.info.fps)
        self._seen_tracks.clear()
        playback = Playback(realtime=self.cam.realtime, loop=self.cam.loop) if not live else None
        policy = FramePolicy.LATEST if (live or self.cam.realtime) else FramePolicy.ALL
        self._pipeline = pipeline = Pipeline(
            reader, branches=[Branch(detector, [MonitorSink(self)], tracker, gate=self.gate,
                                     classifier=self.classifier)],
            source_id=self.cam.name, policy=policy, playback=playback)
        pipeline.start()
        while pipeline.running and not self._stop.is_set():
            self._stop.wait(POLL_S)
            if not all(w.ready.is_set() for w in pipeline.inference):
                self._waiting_since = time.monotonic()  # a model compiling is not a camera without frames
            self._check_offline()
            self.dropped = pipeline.stats().dropped
        if self._stop.is_set():
            pipeline.finish()  # frames already captured still reach the sink
            if not pipeline.wait(3.0):
                pipeline.stop()
            return True
        pipeline.wait(2.0)
        if pipeline.error is not None:
            log.warning("camera %s dropped: %s", self.cam.name, describe(pipeline.error))
        elif not live and not self.cam.loop:
            return True  # a recording played to its end
        else:
            log.warning("camera %s: the stream ended", self.cam.name)
        return False

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._stop.wait(min(POLL_S, max(0.0, deadline - time.monotonic())))
            self._check_offline()

    # state --------------------------------------------------------------------------------------------
    @property
    def last_frame_age(self) -> float | None:
        return None if self._last_frame_at is None else time.monotonic() - self._last_frame_at

    def _check_offline(self) -> None:
        if self.state == CameraState.OFFLINE:
            return
        since = max(self._last_frame_at or 0.0, self._waiting_since)
        if time.monotonic() - since > self.cam.offline_after:
            self.state = CameraState.OFFLINE
            self._event(Event(self.cam.name, "camera_offline"))

    # the sink thread ----------------------------------------------------------------------------------
    def on_result(self, result: Result) -> None:
        self._last_frame_at = time.monotonic()
        self.frames += 1
        if self.state == CameraState.OFFLINE:
            self.state = CameraState.RUNNING
            self._event(Event(self.cam.name, "camera_online"))
        elif self.state != CameraState.RUNNING:
            self.state = CameraState.RUNNING
        self.evidence.add_frame(result.frame.captured_at, result.frame.image)
        if result.inferred:
            if self.gate is not None:
                self.gate.objects_present = len(result.detections) > 0
            n = self.frames  # counts on across reconnects and loops, unlike the source's frame index
            with self._lock:
                crossings = [c for z in self.zones for c in z.update(result.detections, n)]
                crossings += [c for ln in self.lines for c in ln.update(result.detections, n)]
            for crossing in crossings:
                self._crossing_event(crossing, result)
            if self.wants_seen:
                self._seen_events(result)
        self.latest = result

    def _crossing_event(self, c: Crossing, result: Result) -> None:
        kind = {"enter": "zone_enter", "leave": "zone_leave", "cross": "line_cross"}[c.kind]
        self._event(Event(self.cam.name, kind, label=c.label, track_id=c.track_id, zone=c.name,
                          direction=c.direction, confidence=round(c.confidence, 4),
                          classification=classification_of(result, c.track_id)), result)

    def _seen_events(self, result: Result) -> None:
        d = result.detections
        if d.tracker_id is None:
            return
        for i, tid in enumerate(d.tracker_id):
            if tid is not None and int(tid) >= 0 and int(tid) not in self._seen_tracks:
                self._seen_tracks.add(int(tid))
                self._event(Event(self.cam.name, "object_seen", label=str(d.data["class_name"][i]),
                                  track_id=int(tid), confidence=round(float(d.confidence[i]), 4),
                                  classification=classification_of(result, int(tid))), result)

    def _event(self, event: Event, result: Result | None = None) -> None:
        """Store the event, then what its alerts ask for: a snapshot, a clip, a webhook."""
        self.store.add(event)
        rules = [a for a in self.cam.alerts if a.matches(event.type, event.zone, event.label)]
        if result is not None and any(a.snapshot for a in rules):
            event.snapshot_path = self.evidence.snapshot(event.id, event.type, self.render(result))
        clips = [a.clip for a in rules if a.clip is not None]
        if clips and result is not None:
            self.evidence.start_clip(event.id, event.type, result.frame.captured_at,
                                     max(c.pre for c in clips), max(c.post for c in clips))
        for rule in rules:
            if rule.webhook:
                self.webhooks.send(rule.webhook, {"event": event.to_dict(), "camera": self.cam.name})
        self._emit(event)

    def render(self, result: Result) -> np.ndarray:
        """The frame with its boxes, zones and lines, as snapshots and the GUI show it."""
        h, w = result.frame.image.shape[:2]
        with self._lock:  # the sink thread (snapshots) and the GUI both draw
            if self._renderer is None:
                self._renderer = FrameRenderer(w, h)
            return draw_geometry(self._renderer.render_result(result), self.zones, self.lines)

    def set_geometry(self, zones: list[Zone], lines: list[Line]) -> None:
        """Replace the zones and lines while running (the GUI's editor); their counts start again."""
        with self._lock:
            self.zones = [ZoneWatcher(z) for z in zones]
            self.lines = [LineCounter(ln) for ln in lines]
            self.cam = dataclasses.replace(self.cam, zones=tuple(zones), lines=tuple(lines))

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            zones = {z.zone.name: {"now": z.occupancy, "entered": z.entered, "left": z.left} for z in self.zones}
            lines = {ln.line.name: {"in": ln.crossed_in, "out": ln.crossed_out} for ln in self.lines}
        return {**zones, **lines}

    def status(self, events_today: int) -> dict:
        pipeline = self._pipeline
        fps = pipeline.stats().inference_fps if pipeline is not None and pipeline.running else 0.0
        age = self.last_frame_age
        return {"state": self.state, "fps": round(fps, 2), "last_frame_age_s": None if age is None else round(age, 2),
                "events_today": events_today, "frames": self.frames,
                "motion_skipped_fraction": round(self.gate.skipped_fraction, 4) if self.gate else 0.0,
                "reconnects": self.reconnects, "dropped": self.dropped, "counts": self.counts()}


class Monitor:
    def __init__(self, config: MonitorConfig, status_port: int | None = None,
                 model: LoadedModel | None = None) -> None:
        self.config = config
        # Loading makes no backend export (that waits for the first frame's size): the class names in the
        # config are checked against the model's before anything slow happens.
        ready = build_detector(config.model, config.detection, classify=config.classify, loaded=model)
        check_classes(config, ready.detector.model.names)
        self.model, classifier = ready.detector.model, ready.classifier
        config.storage.mkdir(parents=True, exist_ok=True)
        self.store = EventStore(config.storage / "events.db")
        self.webhooks = WebhookSender()
        self.retention = RetentionWorker(config.storage, self.store, config.retention.days, config.retention.max_gb)
        self.status_server = StatusServer(status_port, self.snapshot) if status_port is not None else None
        self.listeners: list[Callable[[Event], None]] = []  # called on the camera's thread (GUI: a signal)
        self.events_total = 0
        self.started_at = utc_now()
        self._running = False
        self._started = time.monotonic()
        base = ready.detector.settings
        self.cameras = {
            cam.name: CameraMonitor(cam, self.model, dataclasses.replace(
                base, classes=self.model.class_ids(list(cam.classes)) if cam.classes else None),
                self.store, config, self.webhooks, self._on_event, classifier)
            for cam in config.cameras
        }

    def _on_event(self, event: Event) -> None:
        self.events_total += 1
        log.info("%s %s%s%s", event.camera, event.type, f" {event.label}#{event.track_id}" if event.label else "",
                 f" {event.zone}" + (f" {event.direction}" if event.direction else "") if event.zone else "")
        for listener in list(self.listeners):
            listener(event)

    def start(self) -> None:
        self._running = True
        if self.status_server is not None:
            self.status_server.start()
        self.webhooks.start()
        self.retention.start()
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
        if self._running:
            self.retention.stop()
            self.webhooks.close(timeout=max(1.0, deadline - time.monotonic()))
            if self.status_server is not None:
                self.status_server.stop()
        self.store.close()

    def snapshot(self) -> dict:
        today = iso(datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0))
        per_camera = self.store.count_since(today)
        return {
            "started_at": self.started_at, "uptime_s": round(time.monotonic() - self._started, 1),
            "cameras": {name: cam.status(per_camera.get(name, 0)) for name, cam in self.cameras.items()},
            "webhooks": self.webhooks.stats(),
            "events_total": self.events_total,
        }
