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
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import cv2
import numpy as np
import supervision as sv

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
from yolo_app.monitor.config import Camera, Line, MonitorConfig, Point, Zone
from yolo_app.monitor.events import Event, EventStore, iso
from yolo_app.monitor.evidence import JPEG_QUALITY, EvidenceRecorder
from yolo_app.monitor.motion import MotionGate
from yolo_app.monitor.objects import BookUpdate, ObjectStage, counted
from yolo_app.monitor.overlay import draw_geometry, draw_held_back
from yolo_app.monitor.zones import Crossing, LineCounter, ZoneWatcher

log = logging.getLogger(__name__)

TRACK_FLOOR = 0.2  # the lowest score that extends an object already counted
SEEN_ROWS_KEPT = 1000  # objects whose object_seen row follows their class (the newest)
BACKOFF_S = 5.0  # a camera whose pipeline failed (not a drop: those the supervisor handles) starts again after
POLL_S = 0.2


def classification_of(d: sv.Detections, track_id: int) -> str | None:
    """``"sports car 0.72"``: the second stage's label for the tracked object, when a classifier runs."""
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
        # The detector reports down to TRACK_FLOOR: a counted object seen at 0.3 for a few frames (half out of the
        # picture, behind a post) goes on being followed; a new object still needs the config's conf.
        self.settings = dataclasses.replace(settings, conf=min(settings.conf, TRACK_FLOOR))
        self.store = store
        self.webhooks = webhooks
        self._emit = emit
        self.zones = [ZoneWatcher(z, cam.track_memory) for z in cam.zones]
        self.lines = [LineCounter(ln, cam.track_memory) for ln in cam.lines]
        # Filters, masks and the objects over the tracks: on the inference thread, so every sink sees objects.
        self.objects = ObjectStage(cam.objects, cam.masks, cam.stationary_after, cam.track_memory, settings.conf)
        self.gate = MotionGate(cam.motion.threshold, cam.motion.cooldown_s) if cam.motion.enabled else None
        pre = max((a.clip.pre for a in cam.alerts if a.clip), default=0.0)
        self.evidence = EvidenceRecorder(cam.name, config.storage, store, pre)
        self.wants_seen = any(a.on == "object_seen" for a in cam.alerts)
        self.wants_moved = any(a.on == "object_moved" for a in cam.alerts)
        self.frames = 0
        self.dropped = 0
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
        self._stationary_in_view = 0
        self._pictures: dict[str | None, tuple[int, bytes]] = {}  # class (None: the camera's) -> (version, JPEG)
        self._picture_wanted = False
        self._pictured_tracks: set[int] = set()
        # object id -> (its object_seen event, the class it was written with): the row follows the object's class
        self._seen_rows: OrderedDict[int, tuple[int, str]] = OrderedDict()
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
        tracker = Tracker(reader.info.fps, memory_s=self.cam.track_memory)
        self.objects.book.new_tracker()
        playback = Playback(realtime=self.cam.realtime, loop=self.cam.loop) if not live else None
        policy = ChannelPolicy.LATEST if (live or self.cam.realtime) else ChannelPolicy.ALL
        self._pipeline = pipeline = Pipeline(
            reader, branches=[Branch(detector, [MonitorSink(self), *self.displays], tracker, gate=self._wants_detection,
                                     classifier=self.classifier, refine=self.objects.refine)],
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
        news = self.objects.news(result) if result.inferred else None
        if news is not None:
            seen = counted(result.detections)
            if self.gate is not None:
                self.gate.objects_present = len(seen) > 0
            self._note_in_view(result, seen)
            with self._lock:
                crossings = [c for z in self.zones for c in z.update(seen, news.now, news.held)]
                crossings += [c for ln in self.lines for c in ln.update(seen, news.now, news.held)]
            for crossing in crossings:
                self._crossing_event(crossing, result, seen)
            self._object_events(news, result, seen)
            self._follow_classes(seen)

    def _note_in_view(self, result: Result, d: sv.Detections) -> None:
        """Objects per class in this frame; with class snapshots on, a picture for each class with a new object."""
        names = [str(n) for n in d.data.get("class_name", [])]
        in_view: dict[str, int] = {}
        for name in names:
            in_view[name] = in_view.get(name, 0) + 1
        with self._lock:
            self._in_view = in_view
            self._stationary_in_view = int(np.count_nonzero(d.data.get("stationary", [])))
        if not self.class_snapshots or d.tracker_id is None:
            return
        fresh = {name for name, tid in zip(names, d.tracker_id) if int(tid) not in self._pictured_tracks}
        if len(self._pictured_tracks) > 10_000:  # days of objects: the ones in view are all that can come back
            self._pictured_tracks.clear()
        self._pictured_tracks.update(int(t) for t in d.tracker_id)
        for name in fresh:
            self._keep_picture(name, result)

    def _keep_picture(self, label: str | None, result: Result) -> None:
        """The frame drawn, as JPEG: the newest picture of ``label`` and of the camera (None)."""
        ok, jpeg = cv2.imencode(".jpg", self.render(result), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            with self._lock:
                for key in {label, None}:
                    self._pictures[key] = (self._pictures.get(key, (0, b""))[0] + 1, jpeg.tobytes())

    def _crossing_event(self, c: Crossing, result: Result, seen: sv.Detections) -> None:
        kind = {"enter": "zone_enter", "leave": "zone_leave", "loiter": "zone_loiter", "cross": "line_cross"}[c.kind]
        obj = self.objects.book.get(c.track_id)
        if obj is not None and c.kind == "enter":
            obj.zones.add(c.name)
        self._event(Event(self.cam.name, kind, label=c.label, track_id=c.track_id, zone=c.name,
                          direction=c.direction, confidence=round(c.confidence, 4),
                          classification=classification_of(seen, c.track_id),
                          stationary=obj.stationary if obj is not None else None), result)

    def _object_events(self, news: BookUpdate, result: Result, seen: sv.Detections) -> None:
        """object_seen when an object starts to count, object_moved when a stationary one moves off (each recorded
        when an alert asks for it), as the frame showed the object (the book may have moved on since)."""
        rows = {int(tid): i for i, tid in enumerate(seen.tracker_id)} if seen.tracker_id is not None else {}
        for kind, ids, wanted in (("object_seen", news.confirmed, self.wants_seen),
                                  ("object_moved", news.moved, self.wants_moved)):
            for oid in ids if wanted else ():
                i = rows.get(oid)
                if i is None:
                    continue
                event = Event(self.cam.name, kind, label=str(seen.data["class_name"][i]), track_id=oid,
                              confidence=round(float(seen.confidence[i]), 4),
                              classification=classification_of(seen, oid), stationary=bool(seen.data["stationary"][i]))
                self._event(event, result)
                if kind == "object_seen" and event.id is not None:
                    self._seen_rows[oid] = (event.id, event.label)
                    while len(self._seen_rows) > SEEN_ROWS_KEPT:
                        self._seen_rows.popitem(last=False)

    def _follow_classes(self, seen: sv.Detections) -> None:
        """An object whose class (from its history) changed since its object_seen was written: the row is updated
        (a bottle first called a vase is a bottle in the events once its history says so)."""
        if seen.tracker_id is None:
            return
        for oid, label in zip(seen.tracker_id, seen.data.get("class_name", [])):
            row = self._seen_rows.get(int(oid))
            if row is not None and row[1] != label:
                self.store.update(row[0], label=str(label))
                self._seen_rows[int(oid)] = (row[0], str(label))

    def _event(self, event: Event, result: Result | None = None) -> None:
        """Store the event, then what its alerts ask for: a snapshot, a clip, a webhook."""
        self.store.add(event)
        obj = self.objects.book.get(event.track_id) if event.track_id is not None else None
        entered = frozenset(obj.zones) if obj is not None else frozenset()
        rules = [a for a in self.cam.alerts if a.matches(event.type, event.zone, event.label, entered)]
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

    def render(self, result: Result, held_back: bool = False) -> np.ndarray:
        """The frame with its boxes, zones, lines and masks, as snapshots and the GUI show it; ``held_back``: the
        boxes the filters held back too, greyed with the filter's name (the window's toggle, for tuning)."""
        h, w = result.frame.image.shape[:2]
        with self._lock:  # the sink thread (snapshots) and the GUI both draw
            if self._renderer is None:
                self._renderer = FrameRenderer(w, h)
            shown = counted(result.detections)
            still = shown.data.get("stationary")
            if still is not None and still.any():  # "#3 car, stationary 0.81": which objects are parked
                shown = shown[np.arange(len(shown))]  # a copy: results are shared between sinks
                shown.data["class_name"] = np.array([f"{n}, stationary" if s else n for n, s in
                                                     zip(shown.data["class_name"], still)], dtype=object)
            drawn = self._renderer.render(result.frame.image, shown, result)
            if held_back:
                draw_held_back(drawn, result.detections)
            return draw_geometry(drawn, self.zones, self.lines, self.objects.masks)

    def _fit_geometry(self, width: int, height: int) -> None:
        """Zones and lines are drawn in the pixels of the first frames; a camera back at another resolution
        (its stream settings changed, a reboot to a default) gets them scaled to fit, counts kept."""
        if self._geometry_size is None or self._geometry_size == (width, height):
            self._geometry_size = (width, height)
            return
        old_w, old_h = self._geometry_size
        sx, sy = width / old_w, height / old_h
        log.warning("camera %s now sends %dx%d (was %dx%d): its zones, lines and masks are scaled to fit",
                    self.cam.name,
                    width, height, old_w, old_h)
        def scaled(points):
            return tuple((x * sx, y * sy) for x, y in points)

        with self._lock:
            memory = self.cam.track_memory
            zones = [ZoneWatcher(dataclasses.replace(z.zone, polygon=scaled(z.zone.polygon)), memory)
                     for z in self.zones]
            lines = [LineCounter(dataclasses.replace(ln.line, points=scaled(ln.line.points)), memory)
                     for ln in self.lines]
            for new, old in zip(zones, self.zones):
                new.entered, new.left = old.entered, old.left
            for new_line, old_line in zip(lines, self.lines):
                new_line.crossed_in, new_line.crossed_out = old_line.crossed_in, old_line.crossed_out
            self.zones, self.lines = zones, lines
            self.cam = dataclasses.replace(self.cam, masks=tuple(scaled(m) for m in self.cam.masks))
            self.objects.set_masks(self.cam.masks)
            self._geometry_size = (width, height)

    def set_geometry(self, zones: list[Zone], lines: list[Line], masks: list[tuple[Point, ...]]) -> None:
        """Replace the zones, lines and masks while running (the GUI's editor); the zones' counts start again."""
        with self._lock:
            self.zones = [ZoneWatcher(z, self.cam.track_memory) for z in zones]
            self.lines = [LineCounter(ln, self.cam.track_memory) for ln in lines]
            self.cam = dataclasses.replace(self.cam, zones=tuple(zones), lines=tuple(lines), masks=tuple(masks))
            self.objects.set_masks(self.cam.masks)

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
                "stationary": self._stationary_in_view,
                "offline_since": self._offline_event.started_at if self._offline_event is not None else None,
                "last_outage_s": None if self.last_outage_s is None else round(self.last_outage_s, 1)}
