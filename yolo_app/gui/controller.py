"""What the window shows: source, models, the running pipeline and its playback. No widgets here.

Slow work (opening a stream, loading a model) runs on helper threads and comes back as queued
signals, so the window never freezes and closing it never waits for them. Thresholds and the class
filter are swapped into the running detectors; structural changes (speed, compare) restart the
pipeline at the current position.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable

from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from yolo_app.engine.capture import Playback
from yolo_app.engine.heads import HEAD_END2END, HeadUnavailable
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.models import UntrustedWeights, configure_cpu_threads, resolve_weights
from yolo_app.engine.pipeline import Branch, Pipeline
from yolo_app.engine.quantize import default_footage
from yolo_app.engine.readers import FrameReader, open_reader
from yolo_app.engine.sources import SourceSpec, parse_source
from yolo_app.engine.supervisor import SourceSupervisor
from yolo_app.engine.tracking import Tracker
from yolo_app.engine.types import ChannelPolicy, SourceInfo
from yolo_app.errors import YoloAppError, describe
from yolo_app.factory import build_detector, follows_file, load_classifier
from yolo_app.gui.bridge import DisplaySink, Recorder, ResultBridge
from yolo_app.gui.trust import NeedsTrust, TrustedFiles
from yolo_app.settings import ClassifySettings, DetectionOptions, ModelSettings, split_names


class ViewerController(QObject):
    sourceOpened = pyqtSignal(object)  # SourceInfo
    sourceFailed = pyqtSignal(str)
    modelLoading = pyqtSignal(int, str)  # branch, weights
    modelLoaded = pyqtSignal(int, object)  # branch, Detector
    modelFailed = pyqtSignal(int, str)
    modelUntrusted = pyqtSignal(int, str, str)  # branch, weights, the file: it needs full unpickling (ask first)
    classifierChanged = pyqtSignal(str)  # the second stage's name, "" when off
    classifierFailed = pyqtSignal(str)
    ended = pyqtSignal()
    failed = pyqtSignal(str)
    sourceEvent = pyqtSignal(object)  # SourceEvent: a live source dropped, went offline, came back
    _done = pyqtSignal(object, object)  # (callback, outcome) from a background thread

    def __init__(self, bridge: ResultBridge, device: str = "auto",
                 settings: DetectionSettings | None = None, backend: str = "auto",
                 trusted: TrustedFiles | None = None, precision: str = "auto", nms: str = "auto") -> None:
        super().__init__()
        self.trusted = trusted or TrustedFiles()  # files the user chose to load anyway (session only)
        self.bridge = bridge
        self.recorder = Recorder()
        self.device = device
        self.backend = backend
        self.precision = precision
        self.nms = nms  # the head picker: a preference, which a model with one head does not follow
        self.settings = settings or DetectionSettings()
        self.class_filter: set[str] | None = None  # names, so it carries across models
        self.detectors: list[Detector | None] = [None]
        self.weights: list[str | None] = [None]
        self.heads: list[str | None] = [None]  # a view's own nms (compare: the other head); None: the picker's
        self.classifier: Any = None  # zoo.classifier.ClassifierStage on the first model's detections
        self.spec: SourceSpec | None = None
        self.info: SourceInfo | None = None
        self.pipeline: Pipeline | None = None
        self.paused = False
        self.realtime = True
        self.loop = False
        self.track = False
        self.position_s = 0.0
        self._pending_reader: FrameReader | None = None
        self._pending_start = 0.0
        self._tokens: dict[str, int] = {}
        self._reported = False
        self._done.connect(lambda callback, outcome: callback(outcome))
        self._watch = QTimer(self)
        self._watch.setInterval(200)
        self._watch.timeout.connect(self._check_pipeline)
        self._watch.start()

    # background work ---------------------------------------------------------------------------
    def _background(self, key: str, work: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """Run ``work`` on a helper thread; ``then(result or exception)`` runs on the GUI thread,
        unless a newer request with the same key was made meanwhile."""
        token = self._tokens[key] = self._tokens.get(key, 0) + 1

        def target() -> None:
            try:
                outcome: Any = work()
            except BaseException as exc:  # noqa: BLE001 - reported to the window as a message
                outcome = exc
            try:
                self._done.emit(lambda o: then(o) if self._tokens.get(key) == token else _discard(o), outcome)
            except RuntimeError:  # the window (and this controller) is gone: nobody to tell
                _discard(outcome)

        # Not a daemon: interpreter shutdown must not cut a thread inside torch or FFmpeg (that aborts
        # the process). Everything run here has its own time-out, so exit waits a bounded time at most.
        threading.Thread(target=target, name=f"gui-{key}", daemon=False).start()

    # sources -----------------------------------------------------------------------------------
    def open_source(self, text: str) -> None:
        try:
            spec = parse_source(text)[0]  # a folder plays its first video (or its images)
        except YoloAppError as exc:
            self.sourceFailed.emit(str(exc))
            return
        self._background("source", lambda: open_reader(spec), lambda r: self._source_ready(spec, r))

    def _source_ready(self, spec: SourceSpec, outcome: Any) -> None:
        if isinstance(outcome, BaseException):
            self.sourceFailed.emit(describe(outcome))
            return
        self._stop_pipeline()
        self.recorder.stop()
        self.spec, self.info, self.position_s = spec, outcome.info, 0.0
        self.sourceOpened.emit(outcome.info)
        self._start(outcome, 0.0)

    def _start(self, reader: FrameReader, start_at: float) -> None:
        if any(d is None for d in self.detectors):  # starts when the model is ready
            self._discard_pending()
            self._pending_reader, self._pending_start = reader, start_at
            return
        info = reader.info
        playback = Playback(realtime=self.realtime, loop=self.loop)
        if self.paused and not info.live:
            playback.pause()
            playback.step()  # show where we are
        if start_at > 0 and not info.live:
            playback.seek(start_at)
        branches = [Branch(det, [DisplaySink(self.bridge, i, self.recorder if i == 0 else None)],
                           Tracker(info.fps) if self.track else None,
                           classifier=self.classifier if i == 0 else None)
                    for i, det in enumerate(self.detectors) if det is not None]
        policy = ChannelPolicy.LATEST if info.live or self.realtime else ChannelPolicy.ALL
        spec = self.spec
        if info.live and spec is not None:  # reopened after a drop, with the monitor's and annotate's rules
            reader = SourceSupervisor(spec, reader, on_event=self.sourceEvent.emit)  # a queued signal: any thread
        self.pipeline = Pipeline(reader, branches=branches, source_id=spec.name if spec else "source",
                                 policy=policy, playback=playback)
        self._reported = False
        self.bridge.clear()
        self.pipeline.start()

    def restart(self, start_at: float | None = None) -> None:
        """Run the current source again from ``start_at`` (default: where the view is)."""
        if self.spec is None:
            return
        at = self.position_s if start_at is None else start_at
        self._stop_pipeline()
        spec = self.spec
        self._background("source", lambda: open_reader(spec), lambda r: self._restarted(r, at))

    def _restarted(self, outcome: Any, at: float) -> None:
        if isinstance(outcome, BaseException):
            self.sourceFailed.emit(describe(outcome))
            return
        self._start(outcome, at)

    # models ------------------------------------------------------------------------------------
    def load_model(self, weights: str, branch: int = 0, nms: str | None = None) -> None:
        """Load ``weights`` into view ``branch``; ``nms``: that view's own head (None: the picker's choice, or the
        file's own head where it has only one)."""
        while len(self.detectors) <= branch:
            self.detectors.append(None)
            self.weights.append(None)
            self.heads.append(None)
        self.heads[branch] = nms
        self.modelLoading.emit(branch, weights)
        device, backend, precision, settings = self.device, self.backend, self.precision, self.settings
        head = nms or self.nms
        hw = (self.info.height, self.info.width) if self.info else None
        calibration = default_footage(self.spec) if self.spec is not None else None  # int8's footage

        def work() -> Detector:
            path = resolve_weights(weights)
            model = follows_file(ModelSettings(str(path), device, backend, precision, self.trusted.allows(path),
                                               calibration, head))
            # thresholds as they are now; the class filter (names) is applied per model when it is ready
            options = DetectionOptions(settings.conf, settings.iou, settings.imgsz, settings.max_det)
            try:
                try:
                    detector = build_detector(model, options, torch_stage=self.classifier is not None,
                                              source_hw=hw).detector
                except HeadUnavailable:
                    if nms is not None:  # asked for this view: say so
                        raise
                    detector = build_detector(dataclasses.replace(model, nms="auto"), options,
                                              torch_stage=self.classifier is not None, source_hw=hw).detector
            except UntrustedWeights as exc:
                raise NeedsTrust(path, str(exc)) from None
            detector.warmup(*(hw or (640, 640)))  # off the GUI thread (a first export included): the swap is instant
            return detector

        self._background(f"model{branch}", work, lambda d: self._model_ready(branch, weights, d))

    def _model_ready(self, branch: int, weights: str, outcome: Any) -> None:
        if isinstance(outcome, NeedsTrust):  # the window asks; trust_file() then load_model() again, or not
            self.modelUntrusted.emit(branch, weights, str(outcome.path))
            return
        if isinstance(outcome, BaseException):
            self.modelFailed.emit(branch, describe(outcome))  # the old model stays
            if self.detectors[branch] is None and branch > 0:
                self.set_compare(None)
            return
        detector: Detector = outcome
        self._apply_filter(detector)
        new_branch = self.detectors[branch] is None
        self.detectors[branch], self.weights[branch] = detector, weights
        self.modelLoaded.emit(branch, detector)
        if self._pending_reader is not None:
            reader, self._pending_reader = self._pending_reader, None
            self._start(reader, self._pending_start)
        elif self.pipeline is not None and not new_branch:
            self.pipeline.inference[branch].detector = detector  # hot swap: the next frame uses it
        elif new_branch and self.pipeline is not None:
            self.restart()

    def trust_file(self, path: str) -> None:
        """Let ``path``, as it is now, be unpickled fully for the rest of this session."""
        self.trusted.add(path)

    def model_declined(self, branch: int) -> None:
        """The user would not load an untrusted file: the previous model stays (a new compare view closes)."""
        if branch < len(self.detectors) and self.detectors[branch] is None and branch > 0:
            self.set_compare(None)

    def set_classifier(self, spec: str | None, classes: str | None = None) -> None:
        """The second stage (``ARCH[:WEIGHTS]`` or a checkpoint), loaded in the background; None: off."""
        if not spec:
            self._tokens["classifier"] = self._tokens.get("classifier", 0) + 1  # a load under way is dropped
            self._classifier_ready(None)
            return
        device = self.detectors[0].model.device if self.detectors[0] is not None else self.device
        classify = ClassifySettings(spec, split_names(classes))
        self._background("classifier", lambda: load_classifier(classify, str(device)), self._classifier_ready)

    def _classifier_ready(self, outcome: Any) -> None:
        if isinstance(outcome, BaseException):
            self.classifierFailed.emit(describe(outcome))
            return
        self.classifier = outcome
        if self.detectors and self.detectors[0] is not None:  # a classifier on torch wants every core
            configure_cpu_threads(self.detectors[0].model, torch_networks=outcome is not None)
        self.classifierChanged.emit(outcome.classifier.name if outcome is not None else "")
        if self.pipeline is not None:
            self.restart()

    def set_device(self, device: str, backend: str | None = None, precision: str | None = None,
                   nms: str | None = None) -> None:
        """Run the models on another device, backend, precision or head (``nms``): each is loaded again so."""
        self.device = device
        self.backend = backend or self.backend
        self.precision = precision or self.precision
        self.nms = nms or self.nms
        for branch, weights in enumerate(self.weights):
            if weights:
                self.load_model(weights, branch, self.heads[branch])

    def compare_heads(self) -> None:
        """The detector's model again beside it, with its other head (both heads of a YOLOv10 or YOLO26)."""
        first = self.detectors[0]
        if first is None or len(first.model.heads) < 2:
            return
        other = "true" if first.model.head == HEAD_END2END else "false"
        self.load_model(str(self.weights[0]), 1, other)

    def set_compare(self, weights: str | None) -> None:
        """Second model on the same frames, or back to one view."""
        if weights:
            self.load_model(weights, 1)
            return
        if len(self.detectors) > 1:
            self._tokens["model1"] = self._tokens.get("model1", 0) + 1  # drop a load in flight
            self.detectors, self.weights, self.heads = self.detectors[:1], self.weights[:1], self.heads[:1]
            self.restart()

    # thresholds --------------------------------------------------------------------------------
    def update_settings(self, **changes: Any) -> None:
        """conf, iou, imgsz, max_det: applied to every running detector for the next frame."""
        self.settings = dataclasses.replace(self.settings, **changes)
        for detector in self.detectors:
            if detector is not None:
                detector.settings = dataclasses.replace(detector.settings, **changes)

    def set_class_filter(self, names: set[str] | None) -> None:
        self.class_filter = names
        for detector in self.detectors:
            if detector is not None:
                self._apply_filter(detector)

    def _apply_filter(self, detector: Detector) -> None:
        wanted = None
        if self.class_filter is not None:
            wanted = tuple(i for i, name in detector.names.items() if name in self.class_filter)
        detector.settings = dataclasses.replace(self.settings, classes=wanted)

    # playback ----------------------------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if self.pipeline is not None:
            self.pipeline.playback.pause() if paused else self.pipeline.playback.resume()

    def step(self) -> None:
        self.set_paused(True)
        if self.pipeline is not None and self.pipeline.running:
            self.pipeline.playback.step()

    def seek(self, seconds: float) -> None:
        self.position_s = seconds
        if self.pipeline is None or not (self.pipeline.running and self.pipeline.playback.seek(seconds)):
            self.restart(seconds)

    def set_track(self, track: bool) -> None:
        """Tracking ids on or off; a fresh tracker from the current position."""
        if track != self.track:
            self.track = track
            self.restart()

    def set_loop(self, loop: bool) -> None:
        self.loop = loop
        if self.pipeline is not None:
            self.pipeline.playback.loop = loop  # read by capture at the end of the file

    def set_realtime(self, realtime: bool) -> None:
        if realtime != self.realtime:
            self.realtime = realtime
            self.restart()

    def note_shown(self, branch: int, pts_s: float | None) -> None:
        if branch == 0 and pts_s is not None and self.info is not None and not self.info.live:
            self.position_s = pts_s

    # lifecycle ---------------------------------------------------------------------------------
    def _check_pipeline(self) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        if pipeline.running or self._reported or pipeline.stopped_by_user:
            return
        self._reported = True
        if pipeline.error is not None:
            self.failed.emit(describe(pipeline.error))
        else:
            self.ended.emit()

    def _stop_pipeline(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop(timeout=2.0)
            self.pipeline = None
        self._discard_pending()

    def _discard_pending(self) -> None:
        if self._pending_reader is not None:
            self._pending_reader.close()
            self._pending_reader = None

    def shutdown(self) -> None:
        """Stop everything; returns within about 2 s."""
        self._watch.stop()
        self._tokens = {k: v + 1 for k, v in self._tokens.items()}  # late arrivals are discarded
        self.recorder.stop()
        self._stop_pipeline()


def _discard(outcome: Any) -> None:
    """A result nobody wants any more (a newer request replaced it): release what it holds."""
    close = getattr(outcome, "close", None)
    if callable(close):
        close()
