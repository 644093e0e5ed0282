"""Side panels: thresholds, the class filter, and the current frame's detections."""

from __future__ import annotations

from collections import Counter

import supervision as sv
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QListWidget,
                             QListWidgetItem, QPushButton, QSlider, QTableWidget, QTableWidgetItem,
                             QVBoxLayout, QWidget)

from yolo_app.engine.tracking import track_id


class ThresholdSlider(QWidget):
    """A 0-1 slider in steps of 0.01 with its value shown."""

    valueChanged = pyqtSignal(float)

    def __init__(self, label: str, value: float) -> None:
        super().__init__()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrow keys step the video, not the slider
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(34)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(label))
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.value_label)
        self.slider.valueChanged.connect(self._changed)
        self.set_value(value)

    def set_value(self, value: float) -> None:
        self.slider.setValue(round(value * 100))
        self.value_label.setText(f"{value:.2f}")

    def value(self) -> float:
        return self.slider.value() / 100

    def _changed(self, raw: int) -> None:
        self.value_label.setText(f"{raw / 100:.2f}")
        self.valueChanged.emit(raw / 100)


class ClassFilter(QGroupBox):
    """A checkable list of the model's class names; emits None when all are checked."""

    changed = pyqtSignal(object)  # set[str] | None

    def __init__(self) -> None:
        super().__init__("Classes")
        self.list = QListWidget()
        self.list.itemChanged.connect(lambda _: self._emit())
        all_button, none_button = QPushButton("All"), QPushButton("None")
        all_button.clicked.connect(lambda: self._check_all(True))
        none_button.clicked.connect(lambda: self._check_all(False))
        buttons = QHBoxLayout()
        buttons.addWidget(all_button)
        buttons.addWidget(none_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)

    def set_names(self, names: list[str], checked: set[str] | None) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = checked is None or name in checked
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)

    def set_checked(self, name: str, on: bool) -> None:
        for item in self.list.findItems(name, Qt.MatchFlag.MatchExactly):
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def checked(self) -> set[str] | None:
        items = [self.list.item(i) for i in range(self.list.count())]
        on = {i.text() for i in items if i.checkState() == Qt.CheckState.Checked}
        return None if len(on) == len(items) else on

    def _check_all(self, on: bool) -> None:
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            self.list.item(i).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self._emit()

    def _emit(self) -> None:
        self.changed.emit(self.checked())


class DetectionsPanel(QGroupBox):
    """The current frame's detections (class, confidence, box) and a count per class."""

    def __init__(self) -> None:
        super().__init__("Detections")
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["class", "conf", "track", "box x1, y1, x2, y2"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.counts = QLabel("no detections")
        self.counts.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.counts)
        layout.addWidget(self.table)

    def show_detections(self, detections: sv.Detections) -> None:
        names = [str(n) for n in detections.data.get("class_name", [])]
        self.table.setRowCount(len(detections))
        tracks = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
        for row, (name, conf, tid, box) in enumerate(zip(names, detections.confidence, tracks, detections.xyxy)):
            ident = track_id(tid)
            cells = [name, f"{conf:.2f}", "" if ident is None else f"#{ident}", ", ".join(f"{v:.0f}" for v in box)]
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        counts = Counter(names)
        self.counts.setText(", ".join(f"{n} {c}" for n, c in counts.most_common()) or "no detections")
