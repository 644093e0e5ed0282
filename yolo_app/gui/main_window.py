"""The main window: source and model pickers, live controls, playback, status and panels.

Widgets only: every action goes to the ViewerController; frames arrive through the ResultBridge.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PyQt6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PyQt6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QInputDialog, QLabel, QMainWindow, QMenu,
                             QMessageBox, QProgressBar, QPushButton, QSlider, QSplitter, QToolBar, QVBoxLayout,
                             QWidget)

from yolo_app import __version__
from yolo_app.engine.backends import BACKENDS
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.models import available_devices
from yolo_app.engine.readers import list_cameras
from yolo_app.engine.render import detection_labels
from yolo_app.engine.sinks import save_snapshot, top_classes
from yolo_app.engine.stats import LatencyMeter, RateMeter
from yolo_app.engine.tracking import track_id
from yolo_app.engine.types import Result, SourceInfo
from yolo_app.errors import YoloAppError
from yolo_app.gui.annotate_dialog import AnnotateDialog
from yolo_app.gui.bridge import ResultBridge, Shown
from yolo_app.gui.controller import ViewerController
from yolo_app.gui.models_dialog import ModelsDialog
from yolo_app.gui.panels import ClassFilter, DetectionsPanel, GridPanel, ScoreBars, ThresholdSlider
from yolo_app.gui.pickers import MEDIA_FILTER, ModelPicker
from yolo_app.gui.trust import TrustedFiles, ask_to_trust
from yolo_app.gui.video_view import VideoView

COMPARE_OFF = "Compare: off"
SPEEDS = ("Real time", "As fast as possible")
MAX_RECENT = 8


@dataclass(frozen=True)
class GuiOptions:
    source: str | None = None
    weights: str | None = None
    device: str | None = None
    backend: str | None = None
    conf: float | None = None
    iou: float | None = None
    compare: str | None = None
    classify: str | None = None  # the second stage, as --classify ARCH[:WEIGHTS]
    classify_classes: str | None = None
    trust_weights: bool = False  # --trust-weights: unpickle any checkpoint without asking


def app_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "yolo_app", "yolo-app")


def clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{secs:04.1f}"


class VideoPane(QWidget):
    """One model's view with a caption: model, FPS, latency, detections."""

    def __init__(self) -> None:
        super().__init__()
        self.view = VideoView()
        self.caption = QLabel("")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)


class MainWindow(QMainWindow):
    def __init__(self, options: GuiOptions | None = None) -> None:
        super().__init__()
        options = options or GuiOptions()
        self.store = app_settings()
        conf = options.conf if options.conf is not None else float(self.store.value("conf", 0.25))
        iou = options.iou if options.iou is not None else float(self.store.value("iou", 0.7))
        settings = DetectionSettings(conf=conf, iou=iou)
        self.bridge = ResultBridge()
        device = options.device or str(self.store.value("device", "auto"))
        backend = options.backend or str(self.store.value("backend", "auto"))
        self.trusted = TrustedFiles(everything=options.trust_weights)  # this session's "Load anyway" files
        self.controller = ViewerController(self.bridge, device, settings, backend, self.trusted)
        self.output_dir = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
                               or Path.home()) / "yolo_app"
        self.display_rate = [RateMeter(), RateMeter()]
        self.latency = [LatencyMeter(), LatencyMeter()]
        self.last_shown: dict[int, Shown] = {}
        self.painted = [0, 0]
        self.error_box: QMessageBox | None = None
        self.source_text: str | None = None
        self.record_started = 0.0
        self.duration: float | None = None
        self.annotate_dialog: AnnotateDialog | None = None
        self.models_dialog: ModelsDialog | None = None
        self.setWindowTitle("yolo_app")
        self.setAcceptDrops(True)
        self._build_ui(settings)
        self._build_actions()
        self._connect()
        geometry = self.store.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 760)
        self._status_timer = QTimer(self)
        self._status_timer.timeout.connect(self._update_status)
        self._status_timer.start(500)
        weights = options.weights or str(self.store.value("weights", "yolov8n.pt"))
        self._select_model(weights)
        if options.compare:
            self._start_compare(options.compare)
        if options.classify:
            self.controller.set_classifier(options.classify, options.classify_classes)
        source = options.source or self.store.value("source") or "demo"
        self.open_source(str(source))
        self._probe_cameras()

    # construction ------------------------------------------------------------------------------
    def _build_ui(self, settings: DetectionSettings) -> None:
        self.panes = [VideoPane(), VideoPane()]
        self.panes[1].hide()
        self.banner = QLabel("")
        self.banner.setStyleSheet("background:#8a6d00;color:white;padding:6px;font-weight:bold")
        self.banner.hide()
        views = QHBoxLayout()
        for pane in self.panes:
            views.addWidget(pane, 1)
        self.play_button = QPushButton("Pause")
        self.step_button = QPushButton("Step ▶|")
        self.replay_button = QPushButton("Replay")
        self.replay_button.hide()
        self.seek_slider = QSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.time_label = QLabel("--:-- / --:--")
        self.speed_box = QComboBox()
        self.speed_box.addItems(SPEEDS)
        self.loop_box = QCheckBox("Loop")
        self.track_box = QCheckBox("Track")
        self.track_box.setToolTip("ByteTrack ids on the boxes: #12 person 0.91")
        for widget in (self.play_button, self.step_button, self.replay_button, self.speed_box, self.loop_box,
                       self.track_box):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        playback = QHBoxLayout()
        for widget in (self.play_button, self.step_button, self.replay_button):
            playback.addWidget(widget)
        playback.addWidget(self.seek_slider, 1)
        playback.addWidget(self.time_label)
        playback.addWidget(self.speed_box)
        playback.addWidget(self.loop_box)
        playback.addWidget(self.track_box)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.banner)
        left_layout.addLayout(views, 1)
        left_layout.addLayout(playback)

        self.conf_slider = ThresholdSlider("conf", settings.conf)
        self.iou_slider = ThresholdSlider("IoU", settings.iou)
        self.class_filter = ClassFilter()
        self.grid_panel = GridPanel()
        self.detections = DetectionsPanel()
        self.scores = ScoreBars()
        self.selection: tuple[int, int | None] | None = None  # the box whose scores show: (row, track id)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.conf_slider)
        right_layout.addWidget(self.iou_slider)
        right_layout.addWidget(self.class_filter, 1)
        right_layout.addWidget(self.grid_panel)
        right_layout.addWidget(self.detections, 2)
        right_layout.addWidget(self.scores)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([900, 320])
        self.setCentralWidget(splitter)

        self.model_box = ModelPicker()
        self.compare_box = ModelPicker((COMPARE_OFF,))
        self.device_box = QComboBox()
        self.device_box.addItems(available_devices())
        self.device_box.setCurrentText(self.controller.device)
        self.backend_box = QComboBox()
        self.backend_box.addItems(BACKENDS)
        self.backend_box.setCurrentText(self.controller.backend)
        self.backend_box.setToolTip("What runs the network; auto: OpenVINO or ONNX Runtime on a CPU, TensorRT or "
                                    "PyTorch on an NVIDIA GPU. The first use of an export takes a few seconds.")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: a model is loading
        self.busy.setMaximumWidth(120)
        self.busy.hide()
        self.status_labels = {key: QLabel() for key in ("capture", "inference", "display", "latency", "dropped",
                                                        "device", "model")}
        self.rec_label = QLabel("")
        self.rec_label.setStyleSheet("color:#e0101a;font-weight:bold")
        bar = self.statusBar()
        bar.addPermanentWidget(self.rec_label)
        bar.addPermanentWidget(self.busy)
        for label in self.status_labels.values():
            bar.addPermanentWidget(label)

    def _build_actions(self) -> None:
        menu_file = self.menuBar().addMenu("&File")
        self.camera_menu = QMenu("Camera", self)
        self.camera_menu.addAction("Looking for cameras…").setEnabled(False)
        self.recent_menu = QMenu("Recent", self)
        self.actions: dict[str, QAction] = {}
        entries = [
            ("open_file", "Open file…", QKeySequence.StandardKey.Open, self._open_file_dialog),
            ("open_folder", "Open folder…", None, self._open_folder_dialog),
            ("open_stream", "Open stream URL…", None, self._open_stream_dialog),
            ("demo", "Demo", None, lambda: self.open_source("demo")),
            ("annotate", "Annotate videos…", "Ctrl+Shift+A", self.open_annotate_dialog),
            ("monitor", "Monitor…", "Ctrl+Shift+M", self.open_monitor),
            ("models", "Models…", "Ctrl+M", self.open_models_dialog),
            ("snapshot", "Snapshot", "S", self.snapshot),
            ("record", "Record", "R", self.toggle_record),
            ("play", "Play / pause", "Space", self.toggle_pause),
            ("step", "Step one frame", "Right", self.step),
            ("fullscreen", "Full screen", "F", self.toggle_fullscreen),
            ("grid", "Grid view", "G", lambda: self.grid_panel.toggle.toggle()),
            ("about", "About", None, self._about),
            ("quit", "Quit", QKeySequence.StandardKey.Quit, self.close),
        ]
        for key, text, shortcut, slot in entries:
            action = QAction(text, self)
            if shortcut is not None:
                action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(slot)
            self.addAction(action)  # shortcuts work in full screen, with the menu bar hidden
            self.actions[key] = action
        for key in ("open_file", "open_folder", "open_stream"):
            menu_file.addAction(self.actions[key])
        menu_file.addMenu(self.camera_menu)
        menu_file.addAction(self.actions["demo"])
        menu_file.addMenu(self.recent_menu)
        menu_file.addSeparator()
        menu_file.addAction(self.actions["annotate"])
        menu_file.addAction(self.actions["monitor"])
        menu_file.addAction(self.actions["models"])
        menu_file.addSeparator()
        menu_file.addAction(self.actions["snapshot"])
        menu_file.addAction(self.actions["record"])
        menu_file.addSeparator()
        menu_file.addAction(self.actions["quit"])
        menu_view = self.menuBar().addMenu("&View")
        self.actions["grid"].setCheckable(True)
        for key in ("play", "step", "fullscreen", "grid"):
            menu_view.addAction(self.actions[key])
        self.menuBar().addMenu("&Help").addAction(self.actions["about"])
        self._fill_recent()

        toolbar = QToolBar("Main")
        toolbar.setMovable(False)
        self.addToolBar(toolbar)
        toolbar.addAction(self.actions["open_file"])
        camera_button = QPushButton("Camera")
        camera_button.setMenu(self.camera_menu)
        toolbar.addWidget(camera_button)
        toolbar.addAction(self.actions["open_stream"])
        toolbar.addAction(self.actions["demo"])
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Model "))
        toolbar.addWidget(self.model_box)
        toolbar.addWidget(QLabel(" Device "))
        toolbar.addWidget(self.device_box)
        toolbar.addWidget(QLabel(" Backend "))
        toolbar.addWidget(self.backend_box)
        toolbar.addWidget(QLabel(" "))
        toolbar.addWidget(self.compare_box)
        toolbar.addSeparator()
        toolbar.addAction(self.actions["snapshot"])
        toolbar.addAction(self.actions["record"])

    def _connect(self) -> None:
        c = self.controller
        self.bridge.frameReady.connect(self._paint)
        c.sourceOpened.connect(self._source_opened)
        c.sourceFailed.connect(lambda msg: self.show_error("Cannot open source", msg))
        c.modelLoading.connect(self._model_loading)
        c.modelLoaded.connect(self._model_loaded)
        c.modelFailed.connect(self._model_failed)
        c.modelUntrusted.connect(self._model_untrusted)
        c.classifierChanged.connect(lambda name: self.statusBar().showMessage(
            f"classifying detections with {name}" if name else "classification off", 5000))
        c.classifierFailed.connect(lambda msg: self.show_error("Cannot load the classifier", msg))
        c.ended.connect(self._ended)
        c.failed.connect(lambda msg: self.show_error("The video stopped", msg))
        c.stateChanged.connect(self._state_changed)
        self.conf_slider.valueChanged.connect(lambda v: c.update_settings(conf=v))
        self.iou_slider.valueChanged.connect(lambda v: c.update_settings(iou=v))
        self.class_filter.changed.connect(c.set_class_filter)
        self.play_button.clicked.connect(self.toggle_pause)
        self.step_button.clicked.connect(self.step)
        self.replay_button.clicked.connect(self.replay)
        self.seek_slider.sliderReleased.connect(lambda: self.seek(self.seek_slider.value() / 10))
        # A click on the track moves the handle a page: seek once the slider has taken its new value.
        self.seek_slider.actionTriggered.connect(
            lambda action: QTimer.singleShot(0, lambda: self.seek(self.seek_slider.value() / 10))
            if action in (QSlider.SliderAction.SliderPageStepAdd.value, QSlider.SliderAction.SliderPageStepSub.value)
            else None)
        self.speed_box.currentIndexChanged.connect(lambda i: c.set_realtime(i == 0))
        self.loop_box.toggled.connect(c.set_loop)
        self.track_box.toggled.connect(c.set_track)
        self.model_box.activated.connect(lambda _: self._model_chosen(self.model_box.currentText()))
        self.compare_box.activated.connect(lambda _: self._compare_chosen(self.compare_box.currentText()))
        self.device_box.activated.connect(lambda _: c.set_device(self.device_box.currentText()))
        self.backend_box.activated.connect(lambda _: c.set_device(c.device, self.backend_box.currentText()))
        self.grid_panel.changed.connect(self._grid_changed)
        self.detections.selected.connect(self._select_row)
        self.panes[0].view.clicked.connect(self._select_at)

    # sources -----------------------------------------------------------------------------------
    def open_source(self, text: str) -> None:
        self.source_text = text
        self.controller.open_source(text)

    def _source_opened(self, info: SourceInfo) -> None:
        self.selection = None
        self.banner.hide()
        self.replay_button.hide()
        self.last_shown.clear()
        self.stop_recording()
        duration = (info.frame_count / float(info.fps)) if info.frame_count and info.fps else None
        self.duration = duration
        self.seek_slider.setEnabled(bool(duration) and not info.live)
        self.seek_slider.setRange(0, int((duration or 0) * 10))
        self.step_button.setEnabled(not info.live)
        self.speed_box.setEnabled(not info.live)
        title = Path(info.uri).name if info.kind.value in ("video", "image", "images", "demo") else info.uri
        self.setWindowTitle(f"yolo_app — {title}")
        if self.source_text:
            self.store.setValue("source", self.source_text)
            recent = [self.source_text] + [s for s in self._recent() if s != self.source_text]
            self.store.setValue("recent", recent[:MAX_RECENT])
            self._fill_recent()

    def _recent(self) -> list[str]:
        value = self.store.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for text in self._recent():
            self.recent_menu.addAction(text, lambda t=text: self.open_source(t))
        self.recent_menu.setEnabled(bool(self._recent()))

    def _open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video or image", "", MEDIA_FILTER)
        if path:
            self.open_source(path)

    def _open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of images or videos")
        if path:
            self.open_source(path)

    def _open_stream_dialog(self) -> None:
        url, ok = QInputDialog.getText(self, "Open stream", "rtsp://, rtmp:// or http(s):// URL")
        if ok and url.strip():
            self.open_source(url.strip())

    def _probe_cameras(self) -> None:
        self.controller._background("cameras", list_cameras, self._cameras_found)

    def _cameras_found(self, found: object) -> None:
        self.camera_menu.clear()
        if isinstance(found, BaseException) or not found:
            self.camera_menu.addAction("No camera found").setEnabled(False)
            return
        for index in found:  # type: ignore[union-attr]
            self.camera_menu.addAction(f"Camera {index}", lambda i=index: self.open_source(str(i)))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        urls = event.mimeData().urls()
        if urls:
            self.open_source(urls[0].toLocalFile() or urls[0].toString())

    # batch annotation --------------------------------------------------------------------------
    def open_annotate_dialog(self) -> AnnotateDialog:
        """The batch dialog (one per window, non-modal: the live view keeps running beside it)."""
        if self.annotate_dialog is None:
            self.annotate_dialog = AnnotateDialog(self.store, self, trusted=self.trusted)
        self.annotate_dialog.offer_source(self.source_text)
        self.annotate_dialog.show()
        self.annotate_dialog.raise_()
        self.annotate_dialog.activateWindow()
        return self.annotate_dialog

    def open_monitor(self) -> None:
        """File ▸ Monitor…: a monitor.yaml's cameras, zones, lines and events in their own window."""
        from yolo_app.gui.monitor_window import open_monitor_dialog

        open_monitor_dialog(self)

    def open_models_dialog(self) -> ModelsDialog:
        """The zoo table; a row's detector or classifier goes to the live view (non-modal)."""
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(self)
            self.models_dialog.useDetector.connect(self._select_model)
            self.models_dialog.useClassifier.connect(self.controller.set_classifier)
            self.models_dialog.stopClassifier.connect(lambda: self.controller.set_classifier(None))
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    # models ------------------------------------------------------------------------------------
    def _select_model(self, weights: str) -> None:
        self.model_box.show_weights(weights)
        self.controller.load_model(weights, 0)

    def _model_chosen(self, text: str) -> None:
        weights = self.model_box.resolve(text, self, "Choose a model")
        if weights is None:
            self.model_box.setCurrentText(Path(self.controller.weights[0] or "").name)
            return
        self._select_model(weights)

    def _compare_chosen(self, text: str) -> None:
        if text == COMPARE_OFF:
            self.controller.set_compare(None)
            self.panes[1].hide()
            return
        weights = self.compare_box.resolve(text, self, "Second model to compare")
        if weights is None:
            self.compare_box.setCurrentText(COMPARE_OFF)
            return
        self._start_compare(weights)

    def _start_compare(self, weights: str) -> None:
        self.compare_box.show_weights(weights)
        self.controller.set_compare(weights)

    def _model_loading(self, branch: int, weights: str) -> None:
        self.busy.show()
        self.statusBar().showMessage(f"loading {Path(weights).name}…")

    def _model_loaded(self, branch: int, detector: Detector) -> None:
        self.busy.setVisible(any(d is None for d in self.controller.detectors))
        self.statusBar().showMessage(f"{detector.model.model_id} ready on {detector.model.device}", 3000)
        if branch == 0:
            self.store.setValue("weights", str(detector.model.path))
            self.class_filter.set_names(list(detector.names.values()), self.controller.class_filter)
            self.grid_panel.set_model(detector.model.strides, list(detector.names.values()))
        else:
            self.panes[1].show()

    def _model_failed(self, branch: int, message: str) -> None:
        self.busy.setVisible(any(d is None for d in self.controller.detectors[:1]))
        if branch == 0 and self.controller.detectors[0] is not None:
            self.model_box.setCurrentText(self.controller.detectors[0].model.model_id)
        if branch == 1:
            self.compare_box.setCurrentText(COMPARE_OFF)
            self.panes[1].hide()
        self.show_error("Cannot load the model", message)

    def _model_untrusted(self, branch: int, weights: str, path: str) -> None:
        """A checkpoint outside Ultralytics' format: load it only if the user says so; else nothing changes."""
        if ask_to_trust(self, Path(path)):
            self.controller.trust_file(path)
            self.controller.load_model(weights, branch)
            return
        self.busy.setVisible(False)
        detectors = self.controller.detectors
        previous = detectors[branch] if branch < len(detectors) else None
        box = self.model_box if branch == 0 else self.compare_box
        box.setCurrentText(previous.model.model_id if previous is not None else "" if branch == 0 else COMPARE_OFF)
        if branch > 0 and previous is None:
            self.panes[1].hide()
        self.controller.model_declined(branch)
        self.statusBar().showMessage(f"{Path(path).name} not loaded", 5000)

    # frames ------------------------------------------------------------------------------------
    def _paint(self, branch: int) -> None:
        shown = self.bridge.take(branch)
        if shown is None or branch >= len(self.panes):
            return
        now = time.monotonic()
        self.panes[branch].view.show_image(shown.image)
        self.last_shown[branch] = shown
        self.painted[branch] += 1
        self.display_rate[branch].tick(now=now)
        self.latency[branch].add((now - shown.result.frame.captured_at) * 1e3)
        self.controller.note_shown(branch, shown.result.frame.pts_s)
        if branch == 0:
            detector = self.controller.detectors[0] if self.controller.detectors else None
            self.detections.show_detections(shown.result.detections, detector.names if detector else None)
            self.grid_panel.show_counts(shown.result.counts)
            self._show_selection(shown.result)
            if not self.seek_slider.isSliderDown() and shown.result.frame.pts_s is not None:
                self.seek_slider.setValue(int(shown.result.frame.pts_s * 10))
                total = clock(self.duration) if self.duration else "live"
                self.time_label.setText(f"{clock(shown.result.frame.pts_s)} / {total}")

    # the grid view and a box's class scores ------------------------------------------------------
    def _grid_changed(self, on: bool, stride: int | None, class_id: int | None) -> None:
        self.actions["grid"].setChecked(on)
        self.controller.update_settings(grid=on, grid_stride=stride, grid_class=class_id)

    def _select_row(self, row: int) -> None:
        shown = self.last_shown.get(0)
        if shown is None or row >= len(shown.result.detections):
            return
        ids = shown.result.detections.tracker_id
        self.selection = (row, None if ids is None else track_id(ids[row]))
        self._show_selection(shown.result)

    def _select_at(self, x: float, y: float) -> None:
        """A click on the video selects the smallest box under it (or clears the selection)."""
        shown = self.last_shown.get(0)
        if shown is None:
            return
        boxes = shown.result.detections.xyxy
        hits = [i for i, (x1, y1, x2, y2) in enumerate(boxes) if x1 <= x <= x2 and y1 <= y <= y2]
        if not hits:
            self.selection = None
            self._show_selection(shown.result)
            return
        self._select_row(min(hits, key=lambda i: (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])))

    def _selected_row(self, result: Result) -> int | None:
        """The selection in this frame: the same track when tracking, else the same row."""
        if self.selection is None:
            return None
        row, ident = self.selection
        det = result.detections
        if ident is not None and det.tracker_id is not None:
            rows = [i for i, t in enumerate(det.tracker_id) if track_id(t) == ident]
            return rows[0] if rows else None
        return row if row < len(det) else None

    def _show_selection(self, result: Result) -> None:
        row = self._selected_row(result)
        self.detections.select_row(row)
        det = result.detections
        probs = det.data.get("class_probs")
        detector = self.controller.detectors[0] if self.controller.detectors else None
        if row is None or probs is None or detector is None:
            self.scores.show_scores(None, [])
            self.panes[0].view.set_highlight(None)
            return
        label = detection_labels(det[row:row + 1])[0]
        self.scores.show_scores(label, top_classes(probs[row], detector.names, len(self.scores.rows)))
        self.panes[0].view.set_highlight(tuple(float(v) for v in det.xyxy[row]))

    def _update_status(self) -> None:
        pipeline = self.controller.pipeline
        labels = self.status_labels
        detectors = self.controller.detectors
        if pipeline is not None:
            stats = pipeline.stats(0)
            labels["capture"].setText(f"capture {stats.capture_fps:.1f} fps")
            labels["inference"].setText(f"inference {stats.inference_fps:.1f} fps")
            labels["dropped"].setText(f"dropped {stats.dropped}")
        labels["display"].setText(f"display {self.display_rate[0].rate():.1f} fps")
        labels["latency"].setText(f"latency {self.latency[0].percentile(50):.0f} ms")
        if detectors and detectors[0] is not None:
            labels["device"].setText(f"{detectors[0].model.device} · {detectors[0].model.runtime}")
            labels["model"].setText(detectors[0].model.model_id)
        for branch, pane in enumerate(self.panes):
            detector = detectors[branch] if branch < len(detectors) else None
            if detector is None or pipeline is None or branch >= len(pipeline.inference):
                pane.caption.setText("")
                continue
            shown = self.last_shown.get(branch)
            count = len(shown.result.detections) if shown else 0
            stats = pipeline.stats(branch)
            pane.caption.setText(f"{detector.model.model_id} · {stats.inference_fps:.1f} fps · "
                                 f"latency {self.latency[branch].percentile(50):.0f} ms · {count} detections")
        if self.controller.recorder.active:
            self.rec_label.setText(f"● REC {clock(time.monotonic() - self.record_started)}")

    # playback ----------------------------------------------------------------------------------
    def toggle_pause(self) -> None:
        if self.replay_button.isVisible():
            self.replay()
            return
        paused = not self.controller.paused
        self.controller.set_paused(paused)
        self.play_button.setText("Play" if paused else "Pause")

    def step(self) -> None:
        self.controller.step()
        self.play_button.setText("Play")

    def seek(self, seconds: float) -> None:
        self.replay_button.hide()
        self.banner.hide()
        self.controller.seek(seconds)

    def replay(self) -> None:
        self.replay_button.hide()
        self.banner.hide()
        self.controller.set_paused(False)
        self.play_button.setText("Pause")
        self.controller.restart(0.0)

    def _ended(self) -> None:
        info = self.controller.info
        if info is not None and info.live:
            self._show_banner("The source ended")
            return
        self._show_banner("End of video")
        self.replay_button.show()
        self.play_button.setText("Replay")

    def _state_changed(self, state: str) -> None:
        if state == "reconnecting":
            self._show_banner("Source dropped — reconnecting…")
        elif state == "running":
            self.banner.hide()

    def _show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()

    # snapshot, record, view --------------------------------------------------------------------
    def snapshot(self) -> list[Path]:
        """Save the shown frame(s): PNG plus detections JSON per view. Returns the files written."""
        written: list[Path] = []
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S_%f")[:-3]
        try:
            for branch, shown in sorted(self.last_shown.items()):
                stem = f"snapshot_{stamp}_frame{shown.result.frame.index}" + (f"_view{branch + 1}" if branch else "")
                written.extend(save_snapshot(shown.annotated, shown.result, self.output_dir, stem))
        except (OSError, YoloAppError) as exc:
            self.show_error("Cannot save the snapshot", str(exc))
            return []
        if written:
            self.statusBar().showMessage(f"snapshot saved: {written[0]}", 5000)
        return written

    def toggle_record(self) -> None:
        if self.controller.recorder.active:
            self.stop_recording()
            return
        info = self.controller.info
        if info is None:
            return
        path = self.output_dir / f"recording_{datetime.now():%Y%m%d_%H%M%S}.mp4"
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.controller.recorder.start(path, info)
        except (OSError, YoloAppError) as exc:
            self.show_error("Cannot record", str(exc))
            return
        self.record_started = time.monotonic()
        self.rec_label.setText("● REC 00:00.0")
        self.actions["record"].setText("Stop recording")

    def stop_recording(self) -> tuple[Path, int] | None:
        done = self.controller.recorder.stop()
        self.rec_label.setText("")
        self.actions["record"].setText("Record")
        if done:
            self.statusBar().showMessage(f"recording saved: {done[0]} ({done[1]} frames)", 8000)
        return done

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() == Qt.Key.Key_Escape and self.isFullScreen():
            self.showNormal()
        else:
            super().keyPressEvent(event)

    def _about(self) -> None:
        QMessageBox.about(self, "About yolo_app", about_text())

    def show_error(self, title: str, message: str) -> None:
        """A dialog that does not block the video (the window keeps running behind it)."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.show()
        self.error_box = box

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.annotate_dialog is not None and not self.annotate_dialog.close():
            event.ignore()  # a batch run is going and the user chose to keep it
            return
        self.store.setValue("geometry", self.saveGeometry())
        self.store.setValue("conf", self.conf_slider.value())
        self.store.setValue("iou", self.iou_slider.value())
        self.store.setValue("device", self.controller.device)
        self.store.setValue("backend", self.controller.backend)
        self.store.sync()
        self._status_timer.stop()
        self.stop_recording()
        self.controller.shutdown()
        event.accept()


def about_text() -> str:
    import av
    import cv2
    import supervision
    import torch
    import ultralytics
    from PyQt6.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"<b>yolo_app {__version__}</b><br>Real-time object detection with Ultralytics YOLO.<br><br>"
            f"Ultralytics {ultralytics.__version__}<br>PyTorch {torch.__version__} (GPU: {gpu})<br>"
            f"supervision {supervision.__version__}<br>OpenCV {cv2.__version__}<br>PyAV {av.__version__}<br>"
            f"Qt {QT_VERSION_STR}, PyQt {PYQT_VERSION_STR}")
