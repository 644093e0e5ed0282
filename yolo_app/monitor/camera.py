"""One watched camera: its supervised source, its engine pipeline on the monitor's detector, and what it
makes of each frame (zones, lines, events with evidence, what the ways out publish).

    CameraMonitor (one thread per camera)  -- opens the source, runs an engine Pipeline on it with a
        tracker and the motion gate, reopens it with back-off when it fails, marks it offline/online
      MonitorSink (the pipeline's sink thread)  -- zones, lines, events, snapshots, clip frames

A camera's frames take the newest-wins path (a live view must not lag); events are written as they happen.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import cv2
import numpy as np

from yolo_app.engine.capture import Playback
from yolo_app.engine.classify import Stage
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.models import LoadedModel
from yolo_app.engine.pipeline import Branch, Pipeline
from yolo_app.engine.readers import FrameReader, open_reader
from yolo_app.engine.render import FrameRenderer
from yolo_app.engine.shared import SharedDetector
from yolo_app.engine.sinks import Sink
from yolo_app.engine.sources import SourceSpec, parse_source
from yolo_app.engine.supervisor import ReconnectPolicy, SourceEvent, SourceState, SourceSupervisor
from yolo_app.engine.tracking import Tracker
from yolo_app.engine.types import ChannelPolicy, Frame, Result, SourceKind
from yolo_app.errors import UserError, describe
from yolo_app.monitor.alerts import WebhookSender
from yolo_app.monitor.config import Camera, Line, MonitorConfig, Zone
from yolo_app.monitor.events import Event, EventStore, iso
from yolo_app.monitor.evidence import JPEG_QUALITY, EvidenceRecorder
from yolo_app.monitor.motion import MotionGate
from yolo_app.monitor.overlay import draw_geometry
from yolo_app.monitor.zones import Crossing, LineCounter, ZoneWatcher

log = logging.getLogger(__name__)

BACKOFF_S = 5.0  # a camera whose pipeline failed (not a drop: those the supervisor handles) starts again after
POLL_S = 0.2


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


@dataclass(frozen=True)
class CameraState:
    """What the ways out publish of a camera, as it is now (they compare it with what they published last)."""

    state: str  # the source's: starting, running, reconnecting, offline, ended
    detecting: bool
    in_view: dict[str, int]  # class -> objects of it in the last frame looked at
    zones: dict[str, dict[str, int]]  # zone -> class -> objects inside now
    lines: dict[str, dict[str, int]]  # line -> {"in": n, "out": n} since the start
    snapshots: dict[str | None, int]  # class (None: the camera's newest, or the one asked for) -> picture version


class MonitorSink(Sink):
    """The pipeline's last stage for a camera; runs on its own thread, sees every inferred frame."""

    policy = ChannelPolicy.ALL  # events must not be lost between inference and here
    name = "monitor"

    def __init__(self, camera: CameraMonitor) -> None:
        self.camera = camera

    def write(self, result: Result) -> None:
        self.camera.on_result(result)


class CameraMonitor:
    def __init__(self, cam: Camera, model: LoadedModel, settings: DetectionSettings, store: EventStore,
                 config: MonitorConfig, webhooks: WebhookSender, emit: Callable[[Event], None],
                 classifier: Stage | None = None, shared: SharedDetector | None = None) -> None:
        self.cam = cam
        self.shared = shared  # the monitor's one detector for every camera (None: this camera runs its own)
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
        self.frames = 0
        self.dropped = 0
        self._seen_tracks: set[int] = set()
        self._renderer: FrameRenderer | None = None
        self.reconnect_policy = ReconnectPolicy(offline_after_s=cam.offline_after)
        self.source: SourceSupervisor | None = None
        self.displays: list[Sink] = []  # more sinks on every frame (the GUI's view)
        self._offline_event: Event | None = None  # the outage under way, ended when frames come back
        self.last_outage_s: float | None = None  # how long the camera was dark the last time
        self._geometry_size: tuple[int, int] | None = None  # the frame size the zones and lines fit
        self._last_frame_at: float | None = None
        self._pipeline: Pipeline | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera:{cam.name}", daemon=True)
        self._lock = threading.Lock()  # zone/line state: the sink thread writes, the GUI and status read
        self.detecting = True  # off: frames go on (the live view, clips) but nothing is detected, no events
        self.class_snapshots = False  # a way out wants a picture of each class's newest object (MQTT)
        self._in_view: dict[str, int] = {}
        self._pictures: dict[str | None, tuple[int, bytes]] = {}  # class (None: the camera's) -> (version, JPEG)
        self._picture_wanted = False
        self._pictured_tracks: set[int] = set()
        self.latest: Result | None = None  # the newest frame with its detections (the web page's live picture)

    # lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        source = self.source
        if source is not None:
            source.interrupt()  # a camera that is away: stop probing now

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
        try:
            try:
                spec = dataclasses.replace(parse_source(self.cam.source, self.cam.stream)[0], name=self.cam.name)
            except UserError:  # a recording not there yet (a share not mounted): waited for like a camera
                spec = SourceSpec(SourceKind.VIDEO, self.cam.source, self.cam.name, stream=self.cam.stream)
            while not self._stop.is_set():
                # One supervisor per pipeline: it reopens the camera after drops and stalls (probing while
                # it is away) and reports offline / back; the pipeline only ends when we stop, a file ends,
                # or something other than the camera fails (then a fresh start after a pause).
                self.source = SourceSupervisor(spec, policy=self.reconnect_policy, on_event=self._source_event,
                                               opener=self._open)
                if self._stop.is_set() or not self.source.connect():
                    return
                if self._play(self.source):
                    return
                self._stop.wait(BACKOFF_S)
        except Exception as exc:  # noqa: BLE001 - one camera's bug must not end the others; it is logged
            log.error("camera %s stopped: %s", self.cam.name, describe(exc))
        finally:
            self.evidence.close()
            if self.source is not None:
                self.source.close()

    def _open(self, _spec: SourceSpec) -> FrameReader:
        return open_reader(parse_source(self.cam.source, self.cam.stream)[0])  # a file may have appeared since

    def _play(self, reader: SourceSupervisor) -> bool:
        """Run the camera's pipeline until we stop or a file ends (True), or it fails (False)."""
        live = reader.info.live
        detector = self.shared.client(self.settings) if self.shared is not None else Detector(self.model, self.settings)
        tracker = Tracker(reader.info.fps)
        self._seen_tracks.clear()
        playback = Playback(realtime=self.cam.realtime, loop=self.cam.loop) if not live else None
        policy = ChannelPolicy.LATEST if (live or self.cam.realtime) else ChannelPolicy.ALL
        self._pipeline = pipeline = Pipeline(
            reader, branches=[Branch(detector, [MonitorSink(self), *self.displays], tracker, gate=self._wants_detection,
                                     classifier=self.classifier)],
            source_id=self.cam.name, policy=policy, playback=playback)
        pipeline.start()
        while pipeline.running and not self._stop.is_set():
            self._stop.wait(POLL_S)
            self.dropped = pipeline.stats().dropped
        if self._stop.is_set():
            pipeline.finish()  # frames already captured still reach the sink
            if not pipeline.wait(3.0):
                pipeline.stop()
            return True
        pipeline.wait(2.0)
        if pipeline.error is not None:
            log.warning("camera %s failed: %s; starting it again", self.cam.name, describe(pipeline.error))
            return False
        return True  # a recording played to its end

    # state --------------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return (self.source.state if self.source is not None else SourceState.STARTING).value

    @property
    def reconnects(self) -> int:
        return self.source.reconnects if self.source is not None else 0

    @property
    def last_frame_age(self) -> float | None:
        return None if self._last_frame_at is None else time.monotonic() - self._last_frame_at

    def _source_event(self, event: SourceEvent) -> None:
        """From the supervisor (on the capture thread): offline and back become the camera's events. The
        camera_offline row spans the outage: it starts with the last frame and ends with the first one back."""
        if event.state is SourceState.OFFLINE:
            log.warning("camera %s", event.describe())
            began = datetime.fromtimestamp(event.at - (event.outage_s or 0.0), timezone.utc)
            self._offline_event = Event(self.cam.name, "camera_offline", started_at=iso(began))
            self._event(self._offline_event)
        elif event.state is SourceState.RUNNING and self._offline_event is not None:
            log.warning("camera %s", event.describe())
            offline, self._offline_event = self._offline_event, None
            back = iso(datetime.fromtimestamp(event.at, timezone.utc))
            if offline.id is not None:
                self.store.update(offline.id, ended_at=back)
            self.last_outage_s = event.outage_s
            self._event(Event(self.cam.name, "camera_online", started_at=back))
        elif event.state is SourceState.RECONNECTING:
            log.info("camera %s", event.describe())

    # commands (any thread: a way out's) ---------------------------------------------------------------
    def set_detecting(self, on: bool) -> None:
        """Detection and events on or off; capture goes on either way."""
        self.detecting = on
        if not on:
            with self._lock:
                self._in_view = {}

    def take_picture(self) -> None:
        """A snapshot of the next frame, boxes, zones and lines drawn: the camera's picture (``picture(None)``)."""
        self._picture_wanted = True

    def picture(self, label: str | None) -> tuple[int, bytes] | None:
        """(version, JPEG) of the latest picture of ``label``'s newest object, or of the one asked for (None)."""
        with self._lock:
            return self._pictures.get(label)

    def state_now(self) -> CameraState:
        with self._lock:
            return CameraState(
                self.state, self.detecting, dict(self._in_view) if self.detecting else {},
                {z.zone.name: z.occupancy_by_label() for z in self.zones},
                {ln.line.name: {"in": ln.crossed_in, "out": ln.crossed_out} for ln in self.lines},
                {label: version for label, (version, _) in self._pictures.items()})

    def _wants_detection(self, frame: Frame) -> bool:
        """Per frame: run the detector? Never while detection is off; else the motion gate's say, if any."""
        return self.detecting and (self.gate is None or self.gate(frame))

    # the sink thread ----------------------------------------------------------------------------------
    def on_result(self, result: Result) -> None:
        self.latest = result  # a reference: frames are never mutated, a live view draws its own copy
        self._last_frame_at = time.monotonic()
        self.frames += 1
        self._fit_geometry(result.frame.width, result.frame.height)
        self.evidence.add_frame(result.frame.captured_at, result.frame.image)
        if self._picture_wanted:
            self._picture_wanted = False
            self._keep_picture(None, result)
        if result.inferred:
            if self.gate is not None:
                self.gate.objects_present = len(result.detections) > 0
            self._note_in_view(result)
            n = self.frames  # counts on across reconnects and loops, unlike the source's frame index
            with self._lock:
                crossings = [c for z in self.zones for c in z.update(result.detections, n)]
                crossings += [c for ln in self.lines for c in ln.update(result.detections, n)]
            for crossing in crossings:
                self._crossing_event(crossing, result)
            if self.wants_seen:
                self._seen_events(result)

    def _note_in_view(self, result: Result) -> None:
        """Objects per class in this frame; with class snapshots on, a picture for each class with a new track."""
        d = result.detections
        names = [str(n) for n in d.data.get("class_name", [])]
        in_view: dict[str, int] = {}
        for name in names:
            in_view[name] = in_view.get(name, 0) + 1
        with self._lock:
            self._in_view = in_view
        if not self.class_snapshots or d.tracker_id is None:
            return
        fresh = {name for name, tid in zip(names, d.tracker_id)
                 if tid is not None and int(tid) >= 0 and int(tid) not in self._pictured_tracks}
        if len(self._pictured_tracks) > 10_000:  # days of tracks: the ones in view are all that can come back
            self._pictured_tracks.clear()
        self._pictured_tracks.update(int(t) for t in d.tracker_id if t is not None and int(t) >= 0)
        for name in fresh:
            self._keep_picture(name, result)

    def _keep_picture(self, label: str | None, result: Result) -> None:
        """The frame drawn, as JPEG: the newest picture of ``label`` and of the camera (None)."""
        ok, jpeg = cv2.imencode(".jpg", self.render(result), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            with self._lock:
                for key in {label, None}:
                    self._pictures[key] = (self._pictures.get(key, (0, b""))[0] + 1, jpeg.tobytes())

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

    def _fit_geometry(self, width: int, height: int) -> None:
        """Zones and lines are drawn in the pixels of the first frames; a camera back at another resolution
        (its stream settings changed, a reboot to a default) gets them scaled to fit, counts kept."""
        if self._geometry_size is None or self._geometry_size == (width, height):
            self._geometry_size = (width, height)
            return
        old_w, old_h = self._geometry_size
        sx, sy = width / old_w, height / old_h
        log.warning("camera %s now sends %dx%d (was %dx%d): its zones and lines are scaled to fit", self.cam.name,
                    width, height, old_w, old_h)
        def scaled(points):
            return tuple((x * sx, y * sy) for x, y in points)

        with self._lock:
            zones = [ZoneWatcher(dataclasses.replace(z.zone, polygon=scaled(z.zone.polygon))) for z in self.zones]
            lines = [LineCounter(dataclasses.replace(ln.line, points=scaled(ln.line.points))) for ln in self.lines]
            for new, old in zip(zones, self.zones):
                new.entered, new.left = old.entered, old.left
            for new_line, old_line in zip(lines, self.lines):
                new_line.crossed_in, new_line.crossed_out = old_line.crossed_in, old_line.crossed_out
            self.zones, self.lines = zones, lines
            self._geometry_size = (width, height)

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
        stats = pipeline.stats() if pipeline is not None and pipeline.running else None
        age = self.last_frame_age
        return {"state": self.state, "fps": round(stats.inference_fps, 2) if stats else 0.0,
                "latency_p95_ms": round(stats.latency_p95_ms, 1) if stats else None,
                "last_frame_age_s": None if age is None else round(age, 2),
                "events_today": events_today, "frames": self.frames,
                "motion_skipped_fraction": round(self.gate.skipped_fraction, 4) if self.gate else 0.0,
                "reconnects": self.reconnects, "dropped": self.dropped, "counts": self.counts(),
                "offline_since": self._offline_event.started_at if self._offline_event is not None else None,
                "last_outage_s": None if self.last_outage_s is None else round(self.last_outage_s, 1)}
