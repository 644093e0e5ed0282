"""The "Annotate videos…" dialog: the annotate job over many files, in the background, beside the live view.

The dialog only gathers settings (AnnotateSettings, as the command line builds them) and shows progress;
a JobRunner (gui/annotate_runner.py) runs the job on its own thread and reports through queued signals.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from PyQt6.QtCore import QSettings, QStandardPaths, QUrl
from PyQt6.QtGui import QColor, QDesktopServices, QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from yolo_app.annotate_job import FileOutcome, JobProgress, JobResult
from yolo_app.engine.device import available_devices
from yolo_app.engine.sinks import prepare_out_dir
from yolo_app.errors import UserError, YoloAppError, describe
from yolo_app.gui.annotate_runner import JobRunner
from yolo_app.gui.panels import ThresholdSlider
from yolo_app.gui.pickers import HEAD_CHOICES, HEAD_LABELS, HEAD_TIP, MEDIA_FILTER, ModelPicker
from yolo_app.gui.trust import TrustedFiles, ask_to_trust
from yolo_app.settings import (BACKENDS, DEFAULT_CONF, DEFAULT_IOU, DEFAULT_WEIGHTS, EXPORT_FORMATS, PRECISIONS,
                               AnnotateSettings, DetectionOptions, ExportOptions, ModelSettings)
from yolo_app.terminal import format_duration

TITLE = "Annotate videos"
JOIN_TIMEOUT_S = 5.0
# The main window's settings: the defaults until a run saves the dialog's own.
LIVE_KEYS = frozenset({"weights", "device", "backend", "precision", "nms", "conf", "iou"})
WARNING_COLOR, ERROR_COLOR = QColor("#b7791f"), QColor("#c0392b")


class AnnotateDialog(QDialog):
    """Non-modal: the main window's live view keeps running while a batch runs here."""

    def __init__(self, store: QSettings, parent: QWidget | None = None, trusted: TrustedFiles | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.trusted = trusted or TrustedFiles()  # shared with the main window: one "Load anyway" per file
        self.runner = JobRunner(self, self.trusted)
        self.files = 0  # sources of the current run, once parsed
        self.out_dir: Path | None = None  # of the last run started
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)
        self._build_ui()
        self._restore()
        self._connect()
        self._set_running(False)

    # construction ------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.form = [self._inputs_group(), self._model_group(), self._exports_group(), self._output_group()]
        left = QVBoxLayout()
        for group in self.form:
            left.addWidget(group, 1 if group is self.form[0] else 0)  # the file list takes the spare height
        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addWidget(self._progress_group(), 1)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.open_button = QPushButton("Open output folder")
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(columns, 1)
        layout.addLayout(buttons)
        self.resize(1000, 600)

    def _inputs_group(self) -> QGroupBox:
        self.source_list = QListWidget()
        self.source_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.source_list.setToolTip("Videos, images and folders to annotate, in this order; drop files here")
        self.add_files_button = QPushButton("Add files…")
        self.add_folder_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Remove")
        buttons = QVBoxLayout()
        for button in (self.add_files_button, self.add_folder_button, self.remove_button):
            button.setAutoDefault(False)
            buttons.addWidget(button)
        buttons.addStretch(1)
        group = QGroupBox("Files and folders (drop them here)")
        layout = QHBoxLayout(group)
        layout.addWidget(self.source_list, 1)
        layout.addLayout(buttons)
        return group

    def _model_group(self) -> QGroupBox:
        self.model_box = ModelPicker()
        self.model_box.show_weights(DEFAULT_WEIGHTS)
        self._model_entry = self.model_box.currentText()  # back to it when Browse… is cancelled
        self.device_box = QComboBox()
        self.device_box.addItems(available_devices())
        self.backend_box = QComboBox()
        self.backend_box.addItems(BACKENDS)
        self.precision_box = QComboBox()
        self.precision_box.addItems(PRECISIONS)
        self.head_box = QComboBox()
        self.head_box.addItems(HEAD_CHOICES)
        self.head_box.setToolTip(HEAD_TIP)
        self.conf_slider = ThresholdSlider("conf", DEFAULT_CONF)
        self.iou_slider = ThresholdSlider("IoU", DEFAULT_IOU)
        self.track_box = QCheckBox("Track (ByteTrack ids)")
        self.video_box = QCheckBox("Write annotated video")
        self.video_box.setChecked(True)
        self.resume_box = QCheckBox("Resume interrupted runs")
        self.resume_box.setChecked(True)
        self.resume_box.setToolTip("Continue a file where a cancelled or failed run stopped and skip files whose "
                                   "outputs are complete; off: every file starts over")
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_box, 1)
        model_row.addWidget(QLabel("Device"))
        model_row.addWidget(self.device_box)
        model_row.addWidget(QLabel("Backend"))
        model_row.addWidget(self.backend_box)
        model_row.addWidget(QLabel("Precision"))
        model_row.addWidget(self.precision_box)
        model_row.addWidget(QLabel("Head"))
        model_row.addWidget(self.head_box)
        checks = QHBoxLayout()
        for box in (self.track_box, self.video_box, self.resume_box):
            checks.addWidget(box)
        group = QGroupBox("Model and options")
        layout = QFormLayout(group)
        layout.addRow("Model", model_row)
        layout.addRow(self.conf_slider)
        layout.addRow(self.iou_slider)
        layout.addRow(checks)
        return group

    def _exports_group(self) -> QGroupBox:
        self.export_boxes = {name: QCheckBox(name) for name in EXPORT_FORMATS}
        if "mot" in self.export_boxes:
            self.export_boxes["mot"].setToolTip("MOT Challenge rows are tracks: needs Track")
        self.every_spin = QSpinBox()
        self.every_spin.setRange(1, 100_000)
        self.every_spin.setToolTip("Dataset exports (coco, yolo, crops): keep every Nth frame")
        self.min_conf_spin = _fraction_spin(0.0, 1.0, "Dataset exports: leave out detections below this confidence")
        self.val_spin = _fraction_spin(0.2, 0.95, "yolo: share of frames in the validation split")
        formats = QHBoxLayout()
        for box in self.export_boxes.values():
            formats.addWidget(box)
        formats.addStretch(1)
        dataset = QHBoxLayout()
        for label, field in (("every Nth frame", self.every_spin), ("min conf", self.min_conf_spin),
                             ("val fraction", self.val_spin)):
            dataset.addWidget(QLabel(label))
            dataset.addWidget(field)
        dataset.addStretch(1)
        group = QGroupBox("Exports (made from each finished record)")
        layout = QVBoxLayout(group)
        layout.addLayout(formats)
        layout.addLayout(dataset)
        return group

    def _output_group(self) -> QGroupBox:
        movies = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation) or str(Path.home())
        self.out_edit = QLineEdit(str(Path(movies) / "yolo_app"))
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setAutoDefault(False)
        group = QGroupBox("Output folder")
        layout = QHBoxLayout(group)
        layout.addWidget(self.out_edit, 1)
        layout.addWidget(self.browse_button)
        return group

    def _progress_group(self) -> QGroupBox:
        self.file_label = QLabel("No run yet")
        self.file_bar = QProgressBar()
        self.overall_label = QLabel("")
        self.overall_bar = QProgressBar()
        self.log = QListWidget()
        self.log.setWordWrap(True)
        self.log.setAlternatingRowColors(True)  # one row per line: where a wrapped line ends shows
        self.summary = QLabel("")
        self.summary.setStyleSheet("font-weight:bold")
        group = QGroupBox("Progress")
        layout = QVBoxLayout(group)
        for widget in (self.file_label, self.file_bar, self.overall_label, self.overall_bar):
            layout.addWidget(widget)
        layout.addWidget(self.log, 1)
        layout.addWidget(self.summary)
        return group

    def _connect(self) -> None:
        self.add_files_button.clicked.connect(self._add_files_dialog)
        self.add_folder_button.clicked.connect(self._add_folder_dialog)
        self.remove_button.clicked.connect(self._remove_selected)
        self.model_box.activated.connect(lambda _: self._model_chosen(self.model_box.currentText()))
        self.track_box.toggled.connect(self._track_toggled)
        self.browse_button.clicked.connect(self._browse_out_dir)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self.open_output)
        self.close_button.clicked.connect(self.close)
        self.runner.started.connect(self._run_started)
        self.runner.progress.connect(self._show_progress)
        self.runner.outcome.connect(self._show_outcome)
        self.runner.finished.connect(self._finished)
        self.runner.failed.connect(self._failed)
        self.runner.untrusted.connect(self._untrusted)
        self._track_toggled(self.track_box.isChecked())

    # settings ----------------------------------------------------------------------------------
    def _fields(self) -> dict[str, tuple[Callable[[], Any], Callable[[Any], None], type]]:
        """Each remembered setting: how to read it from the form, how to put it back, its type."""
        return {
            "weights": (self._weights, self._show_model, str),
            "device": (self.device_box.currentText, self.device_box.setCurrentText, str),
            "backend": (self.backend_box.currentText, self.backend_box.setCurrentText, str),
            "precision": (self.precision_box.currentText, self.precision_box.setCurrentText, str),
            "nms": (lambda: HEAD_CHOICES[self.head_box.currentText()],
                    lambda nms: self.head_box.setCurrentText(HEAD_LABELS.get(nms, "auto")), str),
            "conf": (self.conf_slider.value, self.conf_slider.set_value, float),
            "iou": (self.iou_slider.value, self.iou_slider.set_value, float),
            "track": (self.track_box.isChecked, self.track_box.setChecked, bool),
            "video": (self.video_box.isChecked, self.video_box.setChecked, bool),
            "resume": (self.resume_box.isChecked, self.resume_box.setChecked, bool),
            "exports": (lambda: ",".join(n for n, b in self.export_boxes.items() if b.isChecked()),
                        self._check_formats, str),
            "every": (self.every_spin.value, self.every_spin.setValue, int),
            "min_conf": (self.min_conf_spin.value, self.min_conf_spin.setValue, float),
            "val_fraction": (self.val_spin.value, self.val_spin.setValue, float),
            "out_dir": (self.out_edit.text, self.out_edit.setText, str),
        }

    def _restore(self) -> None:
        for key, (_, put, kind) in self._fields().items():
            stored = [k for k in (f"annotate/{key}", key if key in LIVE_KEYS else None) if k and self.store.contains(k)]
            if stored:
                put(self.store.value(stored[0], type=kind))

    def _save(self) -> None:
        for key, (get, _, _) in self._fields().items():
            self.store.setValue(f"annotate/{key}", get())
        self.store.sync()

    def _check_formats(self, text: str) -> None:
        for name, box in self.export_boxes.items():
            box.setChecked(name in text.split(","))

    # inputs ------------------------------------------------------------------------------------
    def sources(self) -> list[str]:
        return [self.source_list.item(i).text() for i in range(self.source_list.count())]

    def add_sources(self, paths: list[str]) -> None:
        for path in paths:
            if path and path not in self.sources():
                self.source_list.addItem(path)

    def offer_source(self, text: str | None) -> None:
        """The main window's current source, when it is a file and nothing has been chosen yet."""
        if text and not self.sources() and not self.runner.running and Path(text).is_file():
            self.add_sources([text])

    def _add_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Videos or images to annotate", "", MEDIA_FILTER)
        self.add_sources(paths)

    def _add_folder_dialog(self) -> None:
        self.add_sources([QFileDialog.getExistingDirectory(self, "A folder of videos or images to annotate")])

    def _remove_selected(self) -> None:
        for item in self.source_list.selectedItems():
            self.source_list.takeItem(self.source_list.row(item))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if not self.runner.running and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        self.add_sources([url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()])

    def _model_chosen(self, text: str) -> None:
        self._show_model(self.model_box.resolve(text, self, "Choose a model") or self._model_entry)

    def _show_model(self, weights: str) -> None:
        self.model_box.show_weights(weights)
        self._model_entry = self.model_box.currentText()

    def _weights(self) -> str:
        return self.model_box.weights_for(self.model_box.currentText())

    def _track_toggled(self, on: bool) -> None:
        if "mot" in self.export_boxes:
            self.export_boxes["mot"].setEnabled(on)

    def _browse_out_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    def _request(self) -> AnnotateSettings:
        """The run the form describes; a UserError (one line) names what is missing or wrong."""
        sources = tuple(self.sources())
        if not sources:
            raise UserError("add at least one video, image or folder to annotate")
        if not self.out_edit.text().strip():
            raise UserError("choose an output folder")
        out_dir = prepare_out_dir(Path(self.out_edit.text().strip()).expanduser())
        track = self.track_box.isChecked()
        formats = tuple(n for n, b in self.export_boxes.items() if b.isChecked() and (track or n != "mot"))
        return AnnotateSettings(
            sources, out_dir,
            model=ModelSettings(self._weights(), self.device_box.currentText(), self.backend_box.currentText(),
                                self.precision_box.currentText(), nms=HEAD_CHOICES[self.head_box.currentText()]),
            detection=DetectionOptions(conf=self.conf_slider.value(), iou=self.iou_slider.value()),
            track=track, video=self.video_box.isChecked(), resume=self.resume_box.isChecked(), exports=formats,
            export_options=ExportOptions(every=self.every_spin.value(), min_conf=self.min_conf_spin.value(),
                                         val_fraction=self.val_spin.value()))

    # the run -----------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            request = self._request()
        except YoloAppError as exc:
            QMessageBox.warning(self, TITLE, describe(exc))
            return
        self._save()
        self.out_dir, self.files = request.out_dir, 0
        self.log.clear()
        self.summary.setText("")
        for bar in (self.file_bar, self.overall_bar):
            bar.setRange(0, 0)  # busy until the first progress
        self.file_label.setText(f"Loading {Path(request.model.weights).name} on {request.model.device}…")
        self.overall_label.setText("")
        self._set_running(True)
        self.runner.start(request)

    def cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self._log("Cancelling…")
        self.runner.cancel()

    def open_output(self) -> None:
        if self.out_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.out_dir)))

    def _set_running(self, running: bool) -> None:
        for group in self.form:
            group.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.open_button.setEnabled(not running and self.out_dir is not None and self.out_dir.is_dir())

    def _run_started(self, files: int, model: str) -> None:
        self.files = files
        self._log(f"{_count(files, 'file')} with {model} -> {self.out_dir}")

    def _show_progress(self, p: JobProgress) -> None:
        _set_bar(self.file_bar, p.file_done, p.file_total)
        _set_bar(self.overall_bar, p.done, p.total)
        self.file_label.setText(f"File {p.file_number} of {p.files}: {p.name} — {p.file_done} / "
                                f"{p.file_total or '?'} frames")
        self.overall_label.setText(f"All files: {p.done} / {p.total or '?'} frames · {p.fps:.1f} FPS · "
                                   f"ETA {format_duration(p.eta_s)}")

    def _show_outcome(self, outcome: FileOutcome) -> None:
        name = outcome.spec.name
        if outcome.report is not None:
            self._log(outcome.report.summary())
            for warning in outcome.report.warnings:
                self._log(f"warning: {name}: {warning}", WARNING_COLOR)
        if outcome.exported:
            self._log(f"{name}: exported " + ", ".join(p.name for p in outcome.exported))
        if outcome.error is not None:
            self._log(f"error: {name}: {outcome.error}", ERROR_COLOR)

    def _finished(self, result: JobResult) -> None:
        summary = f"{_count(self.files, 'file')}: {len(result.complete)} complete, {len(result.failed)} failed"
        if result.cancelled:
            summary += " — cancelled"
            self._log("Cancelled: what was done is kept as *.partial.*; with “Resume interrupted runs” ticked, "
                      "Start continues where it stopped.", WARNING_COLOR)
        else:  # full even when a length was unknown (busy bars) or the last progress came before the end
            for bar in (self.file_bar, self.overall_bar):
                _set_bar(bar, 1, 1)
        self.summary.setText(summary)
        self._set_running(False)

    def _untrusted(self, request: AnnotateSettings, path: str) -> None:
        """The model file needs full unpickling: run with it only if the user says so, else nothing runs."""
        if ask_to_trust(self, Path(path)):
            self.trusted.add(path)
            self.runner.start(dataclasses.replace(request, model=dataclasses.replace(request.model, trust=True)))
            return
        self._log(f"{Path(path).name} not loaded: nothing was run")
        self.summary.setText("Not started")
        self._set_running(False)

    def _failed(self, message: str) -> None:
        self._log(f"error: {message}", ERROR_COLOR)
        self.summary.setText("Not started" if self.files == 0 else "Stopped by an error")
        self._set_running(False)
        QMessageBox.warning(self, TITLE, message)

    def _log(self, text: str, color: QColor | None = None) -> None:
        item = QListWidgetItem(text)
        item.setToolTip(text)
        if color is not None:
            item.setForeground(color)
        self.log.addItem(item)
        self.log.scrollToBottom()

    # closing -----------------------------------------------------------------------------------
    def reject(self) -> None:
        """Esc, Close and the title bar's close button all end here: a run in progress is cancelled first."""
        if self.runner.running:
            answer = QMessageBox.question(self, TITLE, "A run is in progress. Cancel it and close? Start it again "
                                                       "later to resume where it stopped.")
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.runner.cancel()
            self.runner.join(JOIN_TIMEOUT_S)
        self._save()
        super().reject()


def _fraction_spin(value: float, maximum: float, tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(0.0, maximum)
    spin.setSingleStep(0.05)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


def _set_bar(bar: QProgressBar, value: int, total: int | None) -> None:
    bar.setRange(0, total or 0)  # 0..0: a busy bar while the length is unknown
    bar.setValue(min(value, total) if total else 0)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
