"""The main window: puts the pieces together and routes what the controller reports to them.

Its parts live in their own modules: the model pickers (model_bar), source menus (source_menu), menu and
toolbar layout (menus), playback row (playback_bar), status bar (status_bar), side panels (panels) and the
selected box's rules (selection). Widgets only: every action goes to the ViewerController; frames arrive
through the ResultBridge.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from PyQt6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PyQt6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QMessageBox, QPushButton, QSplitter, QVBoxLayout, QWidget

from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.sinks import save_snapshot
from yolo_app.engine.stats import LatencyMeter, RateMeter, seconds_since_process_start
from yolo_app.engine.supervisor import SourceEvent, SourceState
from yolo_app.engine.types import Result, SourceInfo
from yolo_app.errors import YoloAppError
from yolo_app.gui.about import about_text
from yolo_app.gui.annotate_dialog import AnnotateDialog
from yolo_app.gui.bridge import ResultBridge, Shown
from yolo_app.gui.controller import ViewerController
from yolo_app.gui.menus import CAMERA, MODELS, RECENT, add_commands, lay_out
from yolo_app.gui.model_bar import ModelBar
from yolo_app.gui.models_dialog import ModelsDialog
from yolo_app.gui.panels import ClassFilter, DetectionsPanel, GridPanel, ScoreBars, ThresholdSlider
from yolo_app.gui.pickers import head_label
from yolo_app.gui.playback_bar import PlaybackBar
from yolo_app.gui.selection import Selection, box_scores, follow, hit_test, select
from yolo_app.gui.source_menu import SourceMenus
from yolo_app.gui.status_bar import StatusBar
from yolo_app.gui.trust import TrustedFiles, ask_to_trust
from yolo_app.gui.video_view import VideoPane
from yolo_app.settings import DEFAULT_CONF, DEFAULT_IOU, DEFAULT_WEIGHTS, NMS_CHOICES, GuiOptions


def app_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "yolo_app", "yolo-app")


class MainWindow(QMainWindow):
    def __init__(self, options: GuiOptions | None = None) -> None:
        super().__init__()
        options = options or GuiOptions()
        self.store = app_settings()
        conf = options.conf if options.conf is not None else float(self.store.value("conf", DEFAULT_CONF))
        iou = options.iou if options.iou is not None else float(self.store.value("iou", DEFAULT_IOU))
        settings = DetectionSettings(conf=conf, iou=iou)
        self.bridge = ResultBridge()
        device = options.device or str(self.store.value("device", "auto"))
        backend = options.backend or str(self.store.value("backend", "auto"))
        precision = options.precision or str(self.store.value("precision", "auto"))
        nms = options.nms or str(self.store.value("nms", "auto"))
        if nms not in NMS_CHOICES:  # a settings file edited by hand
            nms = "auto"
        self.trusted = TrustedFiles(everything=options.trust_weights)  # this session's "Load anyway" files
        self.controller = ViewerController(self.bridge, device, settings, backend, self.trusted, precision, nms)
        self.output_dir = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
                               or Path.home()) / "yolo_app"
        self.display_rate = [RateMeter(), RateMeter()]
        self.latency = [LatencyMeter(), LatencyMeter()]
        self.last_shown: dict[int, Shown] = {}
        self.painted = [0, 0]
        self._first_told = False
        self.error_box: QMessageBox | None = None
        self.source_text: str | None = None
        self.record_started = 0.0
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
        weights = options.weights or str(self.store.value("weights", DEFAULT_WEIGHTS))
        self.model_bar.select_model(weights)
        if options.compare:
            self.model_bar.start_compare(options.compare)
        if options.classify:
            self.controller.set_classifier(options.classify, options.classify_classes)
        source = options.source or self.store.value("source") or "demo"
        self.open_source(str(source))
        self.sources.probe_cameras(self.controller)

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
        self.playback = PlaybackBar(self.controller)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.banner)
        left_layout.addLayout(views, 1)
        left_layout.addWidget(self.playback)

        self.conf_slider = ThresholdSlider("conf", settings.conf)
        self.iou_slider = ThresholdSlider("IoU", settings.iou)
        self.class_filter = ClassFilter()
        self.grid_panel = GridPanel()
        self.detections = DetectionsPanel()
        self.scores = ScoreBars()
        self.selection: Selection | None = None  # the box whose scores show, followed across frames
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

        self.model_bar = ModelBar(self.controller)
        self.status_bar = StatusBar()
        self.setStatusBar(self.status_bar)

    def _build_actions(self) -> None:
        self.sources = SourceMenus(self, self.store)
        self.sources.chosen.connect(self.open_source)
        self.actions = add_commands(self, [
            ("open_file", "Open file…", QKeySequence.StandardKey.Open, self.sources.open_file),
            ("open_folder", "Open folder…", None, self.sources.open_folder),
            ("open_stream", "Open stream URL…", None, self.sources.open_stream),
            ("demo", "Demo", None, lambda: self.open_source("demo")),
            ("annotate", "Annotate videos…", "Ctrl+Shift+A", self.open_annotate_dialog),
            ("monitor", "Monitor…", "Ctrl+Shift+M", self.open_monitor),
            ("models", "Models…", "Ctrl+M", self.open_models_dialog),
            ("snapshot", "Snapshot", "S", self.snapshot),
            ("record", "Record", "R", self.toggle_record),
            ("play", "Play / pause", "Space", self.playback.toggle_pause),
            ("step", "Step one frame", "Right", self.playback.step),
            ("fullscreen", "Full screen", "F", self.toggle_fullscreen),
            ("grid", "Grid view", "G", lambda: self.grid_panel.toggle.toggle()),
            ("about", "About", None, lambda: QMessageBox.about(self, "About yolo_app", about_text())),
            ("quit", "Quit", QKeySequence.StandardKey.Quit, self.close),
        ])
        self.actions["grid"].setCheckable(True)
        camera_button = QPushButton("Camera")
        camera_button.setMenu(self.sources.camera_menu)
        lay_out(self, self.actions, {CAMERA: self.sources.camera_menu, RECENT: self.sources.recent_menu},
                {CAMERA: camera_button, MODELS: self.model_bar})

    def _connect(self) -> None:
        c = self.controller
        self.bridge.frameReady.connect(self._paint)
        c.sourceOpened.connect(self._source_opened)
        c.sourceFailed.connect(lambda msg: self.show_error("Cannot open source", msg))
        c.modelLoading.connect(self._model_loading)
        c.modelLoaded.connect(self._model_loaded)
        c.modelFailed.connect(self._model_failed)
        c.modelUntrusted.connect(self._model_untrusted)
        c.classifierChanged.connect(lambda name: self.status_bar.showMessage(
            f"classifying detections with {name}" if name else "classification off", 5000))
        c.classifierFailed.connect(lambda msg: self.show_error("Cannot load the classifier", msg))
        c.ended.connect(self._ended)
        c.failed.connect(lambda msg: self.show_error("The video stopped", msg))
        c.sourceEvent.connect(self._source_event)
        self.conf_slider.valueChanged.connect(lambda v: c.update_settings(conf=v))
        self.iou_slider.valueChanged.connect(lambda v: c.update_settings(iou=v))
        self.class_filter.changed.connect(c.set_class_filter)
        self.playback.moved.connect(self.banner.hide)  # a seek or replay: "End of video" no longer holds
        self.model_bar.compareClosed.connect(self.panes[1].hide)
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
        self.playback.source_opened(info)
        self.last_shown.clear()
        self.stop_recording()
        title = Path(info.uri).name if info.kind.value in ("video", "image", "images", "demo") else info.uri
        self.setWindowTitle(f"yolo_app — {title}")
        if self.source_text:
            self.sources.remember(self.source_text)

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
            self.models_dialog.useDetector.connect(self.model_bar.select_model)
            self.models_dialog.useClassifier.connect(self.controller.set_classifier)
            self.models_dialog.stopClassifier.connect(lambda: self.controller.set_classifier(None))
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    # models ------------------------------------------------------------------------------------
    def _model_loading(self, branch: int, weights: str) -> None:
        self.status_bar.busy.show()
        self.status_bar.showMessage(f"loading {Path(weights).name}…")

    def _model_loaded(self, branch: int, detector: Detector) -> None:
        self.status_bar.busy.setVisible(any(d is None for d in self.controller.detectors))
        self.status_bar.showMessage(f"{detector.model.model_id} ready on {detector.model.device}", 3000)
        if branch == 0:
            self.store.setValue("weights", str(detector.model.path))
            self.model_bar.show_heads(detector.model)
            self.class_filter.set_names(list(detector.names.values()), self.controller.class_filter)
            self.grid_panel.set_model(detector.model.strides, list(detector.names.values()))
        else:
            self.panes[1].show()

    def _model_failed(self, branch: int, message: str) -> None:
        self.status_bar.busy.setVisible(any(d is None for d in self.controller.detectors[:1]))
        self.model_bar.load_failed(branch)
        self.show_error("Cannot load the model", message)

    def _model_untrusted(self, branch: int, weights: str, path: str) -> None:
        """A checkpoint outside Ultralytics' format: load it only if the user says so; else nothing changes."""
        if ask_to_trust(self, Path(path)):
            self.controller.trust_file(path)
            self.controller.load_model(weights, branch)
            return
        self.status_bar.busy.setVisible(False)
        self.model_bar.load_declined(branch)
        self.controller.model_declined(branch)
        self.status_bar.showMessage(f"{Path(path).name} not loaded", 5000)

    # frames ------------------------------------------------------------------------------------
    def _paint(self, branch: int) -> None:
        shown = self.bridge.take(branch)
        if shown is None or branch >= len(self.panes):
            return
        now = time.monotonic()
        self.panes[branch].view.show_image(shown.image)
        self.last_shown[branch] = shown
        self.painted[branch] += 1
        if not self._first_told:  # start-up as the user waits it, on the terminal that started the window
            self._first_told = True
            print(f"first boxes {seconds_since_process_start():.1f} s after the window was started", flush=True)
        self.display_rate[branch].tick(now=now)
        self.latency[branch].add((now - shown.result.frame.captured_at) * 1e3)
        self.controller.note_shown(branch, shown.result.frame.pts_s)
        if branch == 0:
            detector = self.controller.detectors[0] if self.controller.detectors else None
            self.detections.show_detections(shown.result.detections, detector.names if detector else None)
            self.grid_panel.show_counts(shown.result.counts)
            self._show_selection(shown.result)
            self.playback.show_position(shown.result.frame.pts_s)

    # the grid view and a box's class scores ------------------------------------------------------
    def _grid_changed(self, on: bool, stride: int | None, class_id: int | None) -> None:
        self.actions["grid"].setChecked(on)
        self.controller.update_settings(grid=on, grid_stride=stride, grid_class=class_id)

    def _select_row(self, row: int) -> None:
        shown = self.last_shown.get(0)
        selection = select(shown.result.detections, row) if shown is not None else None
        if shown is None or selection is None:  # a row the frame no longer has changes nothing
            return
        self.selection = selection
        self._show_selection(shown.result)

    def _select_at(self, x: float, y: float) -> None:
        """A click on the video (source-frame pixels) selects the box under it, or clears the selection."""
        shown = self.last_shown.get(0)
        if shown is None:
            return
        row = hit_test(shown.result.detections, x, y)
        if row is None:
            self.selection = None
            self._show_selection(shown.result)
            return
        self._select_row(row)

    def _show_selection(self, result: Result) -> None:
        row = follow(self.selection, result.detections)
        self.detections.select_row(row)
        detector = self.controller.detectors[0] if self.controller.detectors else None
        if row is None or detector is None:
            self.scores.show_scores(None, [])
            self.panes[0].view.set_highlight(None)
            return
        shown = box_scores(result.detections, row, detector.names, len(self.scores.rows))
        self.scores.show_scores(shown.heading, [list(score) for score in shown.scores])
        self.panes[0].view.set_highlight(shown.box)

    def _update_status(self) -> None:
        pipeline = self.controller.pipeline
        detectors = self.controller.detectors
        first = detectors[0] if detectors else None
        self.status_bar.show_figures(pipeline.stats(0) if pipeline is not None else None, self.display_rate[0].rate(),
                                     self.latency[0].percentile(50), first.model if first is not None else None)
        for branch, pane in enumerate(self.panes):
            detector = detectors[branch] if branch < len(detectors) else None
            if detector is None or pipeline is None or branch >= len(pipeline.inference):
                pane.caption.setText("")
                continue
            shown = self.last_shown.get(branch)
            count = len(shown.result.detections) if shown else 0
            stats = pipeline.stats(branch)
            model = detector.model
            head = f" ({head_label(model.head)})" if len(model.heads) > 1 else ""
            pane.caption.setText(f"{model.model_id}{head} · {stats.inference_fps:.1f} fps · "
                                 f"latency {self.latency[branch].percentile(50):.0f} ms · {count} detections")
        if self.controller.recorder.active:
            self.status_bar.show_recording(time.monotonic() - self.record_started)

    # the end of a source, a dropped one --------------------------------------------------------
    def _ended(self) -> None:
        info = self.controller.info
        if info is not None and info.live:
            self._show_banner("The source ended")
            return
        self._show_banner("End of video")
        self.playback.file_ended()

    def _source_event(self, event: SourceEvent) -> None:
        if event.state is SourceState.RECONNECTING:
            self._show_banner(f"Source dropped ({event.reason}) — reconnecting…")
        elif event.state is SourceState.OFFLINE:
            self._show_banner(f"Source offline ({event.reason}) — still trying every second…")
        elif event.state is SourceState.RUNNING:
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
            self.status_bar.showMessage(f"snapshot saved: {written[0]}", 5000)
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
        self.status_bar.show_recording(0.0)
        self.actions["record"].setText("Stop recording")

    def stop_recording(self) -> tuple[Path, int] | None:
        done = self.controller.recorder.stop()
        self.status_bar.show_recording(None)
        self.actions["record"].setText("Record")
        if done:
            self.status_bar.showMessage(f"recording saved: {done[0]} ({done[1]} frames)", 8000)
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
        self.store.setValue("precision", self.controller.precision)
        self.store.setValue("nms", self.controller.nms)
        self.store.sync()
        self._status_timer.stop()
        self.stop_recording()
        self.controller.shutdown()
        event.accept()

