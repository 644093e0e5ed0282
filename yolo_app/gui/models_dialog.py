"""The Models dialog: the zoo table (as ``yolo-app models`` prints it), where each model's weights are,
and the actions on a row: use a detector, classify detections with a classifier, add a weights file."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                             QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from yolo_app.engine.models import APP_WEIGHTS_DIR
from yolo_app.errors import describe
from yolo_app.zoo.catalog import ZooEntry, zoo_table

COLUMNS = ("model", "kind", "family", "params (M)", "metric", "score", "input", "weights here")


def _cell(value: object) -> str:
    return "—" if value is None else str(value)


class ModelsDialog(QDialog):
    useDetector = pyqtSignal(str)  # a detector's weights path
    useClassifier = pyqtSignal(str)  # a --classify spec: ARCH:WEIGHTS, or a checkpoint path
    stopClassifier = pyqtSignal()
    loaded = pyqtSignal(object)  # list[ZooEntry] or an exception, from the helper thread

    def __init__(self, parent: QWidget | None = None, weights_dir: Path = APP_WEIGHTS_DIR) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(980, 560)
        self.weights_dir = weights_dir  # where "Add weights file…" copies to (on the search path)
        self.entries: list[ZooEntry] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.status = QLabel("reading the model table…")
        self.buttons = {key: QPushButton(text) for key, text in (
            ("detector", "Use as detector"), ("classifier", "Classify detections with it"),
            ("add", "Add weights file…"), ("checkpoint", "Classifier checkpoint…"),
            ("stop", "Stop classifying"), ("close", "Close"))}
        row = QHBoxLayout()
        for key in ("detector", "classifier", "add", "checkpoint", "stop"):
            row.addWidget(self.buttons[key])
        row.addStretch(1)
        row.addWidget(self.buttons["close"])
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addLayout(row)
        self.buttons["detector"].clicked.connect(lambda: self.use(self.selected()))
        self.buttons["classifier"].clicked.connect(lambda: self.use(self.selected()))
        self.buttons["add"].clicked.connect(lambda: self.add_weights(None))
        self.buttons["checkpoint"].clicked.connect(self._choose_checkpoint)
        self.buttons["stop"].clicked.connect(self.stopClassifier.emit)
        self.buttons["close"].clicked.connect(self.close)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.loaded.connect(self._fill)
        self.refresh()

    def refresh(self) -> None:
        """Read the table on a helper thread (timm builds two networks to count their parameters)."""
        def work() -> None:
            try:
                outcome: object = zoo_table()
            except Exception as exc:  # noqa: BLE001 - shown in the dialog
                outcome = exc
            try:
                self.loaded.emit(outcome)
            except RuntimeError:  # the dialog is gone
                pass

        threading.Thread(target=work, name="gui-zoo", daemon=True).start()

    def _fill(self, outcome: object) -> None:
        if isinstance(outcome, BaseException):
            self.status.setText(f"cannot read the model table: {describe(outcome)}")
            return
        self.entries = list(outcome)  # type: ignore[call-overload]
        self.table.setRowCount(len(self.entries))
        for r, e in enumerate(self.entries):
            where = e.weights_path or ("no" if e.available else f"unavailable: {e.reason}")
            for c, value in enumerate((e.name, e.kind, e.family, _cell(e.params_m), e.metric, _cell(e.score),
                                       _cell(e.input_size or None), where)):
                item = QTableWidgetItem(value)
                if c == len(COLUMNS) - 1 and e.reason:
                    item.setToolTip(e.reason)
                self.table.setItem(r, c, item)
        present = sum(1 for e in self.entries if e.weights_path)
        self.status.setText(f"{len(self.entries)} models, {present} with weights on this machine")
        self._update_buttons()

    def selected(self) -> ZooEntry | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.entries[rows[0].row()] if rows else None

    def select(self, name: str) -> None:
        for r, e in enumerate(self.entries):
            if e.name == name:
                self.table.selectRow(r)

    def _update_buttons(self) -> None:
        entry = self.selected()
        self.buttons["detector"].setEnabled(entry is not None and entry.kind == "detector")
        self.buttons["classifier"].setEnabled(entry is not None and entry.kind == "classifier" and entry.available)

    def use(self, entry: ZooEntry | None) -> bool:
        if entry is None:
            return False
        if entry.weights_path is None:
            QMessageBox.information(self, "No weights here", f"The weights of {entry.name} are not on this machine. "
                                    f"Add its file with “Add weights file…”, or run “yolo-app models --download "
                                    f"{entry.name}” where there is a network.")
            return False
        if entry.kind == "detector":
            self.useDetector.emit(entry.weights_path)
        else:
            self.useClassifier.emit(f"{entry.name}:{entry.weights_path}")
        return True

    def add_weights(self, source: str | None) -> Path | None:
        """Copy a weights file onto the search path (named for the selected model when it is not already)."""
        if source is None:
            source, _ = QFileDialog.getOpenFileName(self, "Add a weights file", "",
                                                    "Weights (*.pt *.pth *.safetensors);;All files (*)")
            if not source:
                return None
        src, entry = Path(source), self.selected()
        name = src.name
        if entry is not None and name not in entry.files:
            name = f"{entry.name}{'.pt' if entry.kind == 'detector' else src.suffix or '.pth'}"
        target = self.weights_dir / name
        try:
            self.weights_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        except OSError as exc:
            QMessageBox.warning(self, "Cannot add the file", f"{src} -> {target}: {exc.strerror or exc}")
            return None
        self.status.setText(f"added {target}")
        self.refresh()
        return target

    def _choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A train-classifier checkpoint", "", "Checkpoints (*.pt)")
        if path:
            self.useClassifier.emit(path)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            return
        super().keyPressEvent(event)
