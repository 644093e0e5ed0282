"""Side panels: thresholds, the class filter, the current frame's detections, the selected box's class
scores and the grid view's controls."""

from __future__ import annotations

from collections import Counter

import supervision as sv
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QGridLayout, QGroupBox, QHBoxLayout,
                             QHeaderView, QLabel, QListWidget, QListWidgetItem, QProgressBar, QPushButton, QSlider,
                             QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from yolo_app.engine.grid import counts_text
from yolo_app.engine.record import top_classes
from yolo_app.engine.tracking import track_id
from yolo_app.engine.types import HeadCounts

NO_SELECTION = "Click a box on the video or a row above to see its class scores"
TOP_K = 3  # the table's default; the JSONL's is --top-k


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
    """The current frame's detections (class, confidence, track, best classes, box) and a count per class."""

    selected = pyqtSignal(int)  # a row chosen by the user

    def __init__(self) -> None:
        super().__init__("Detections")
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["class", "conf", "track", "box x1, y1, x2, y2", f"top {TOP_K} classes"])
        header = self.table.horizontalHeader()
        for col in range(4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.counts = QLabel("no detections")
        self.counts.setWordWrap(True)
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 10)
        self.top_k.setValue(TOP_K)
        self.top_k.setPrefix("top ")
        self.top_k.setToolTip("How many of each box's best classes the table shows")
        self.top_k.valueChanged.connect(lambda k: self.table.setHorizontalHeaderItem(4, QTableWidgetItem(
            f"top {k} classes")))
        row = QHBoxLayout()
        row.addWidget(self.counts, 1)
        row.addWidget(self.top_k)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.table)

    def show_detections(self, detections: sv.Detections, names: dict[int, str] | None = None) -> None:
        class_names = [str(n) for n in detections.data.get("class_name", [])]
        probs = detections.data.get("class_probs")
        self.table.blockSignals(True)  # refilling is not the user choosing a row
        self.table.setRowCount(len(detections))
        tracks = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
        for row, (name, conf, tid, box) in enumerate(zip(class_names, detections.confidence, tracks,
                                                         detections.xyxy)):
            ident = track_id(tid)
            best = top_classes(probs[row], names, self.top_k.value()) if probs is not None and names else []
            cells = [name, f"{conf:.2f}", "" if ident is None else f"#{ident}", ", ".join(f"{v:.0f}" for v in box),
                     " · ".join(f"{n} {p:.2f}" for n, p in best)]
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.blockSignals(False)
        counts = Counter(class_names)
        self.counts.setText(", ".join(f"{n} {c}" for n, c in counts.most_common()) or "no detections")

    def select_row(self, row: int | None) -> None:
        """Show ``row`` as selected (None: nothing) without announcing it as the user's choice."""
        self.table.blockSignals(True)
        if row is None:
            self.table.clearSelection()
        else:
            self.table.selectRow(row)
        self.table.blockSignals(False)

    def _selection_changed(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.selected.emit(rows[0].row())


class ScoreBars(QGroupBox):
    """The selected box's best classes as bars: the head's own score for each class on that box."""

    def __init__(self, k: int = 5) -> None:
        super().__init__("Class scores")
        self.heading = QLabel(NO_SELECTION)
        self.heading.setWordWrap(True)
        self.rows: list[tuple[QLabel, QProgressBar]] = []
        grid = QGridLayout()
        for i in range(k):
            name, bar = QLabel(), QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            grid.addWidget(name, i, 0)
            grid.addWidget(bar, i, 1)
            self.rows.append((name, bar))
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(grid)
        self.show_scores(None, [])

    def show_scores(self, heading: str | None, scores: list[list]) -> None:
        """``scores``: ``[[name, score], …]`` best first; None: no box selected."""
        self.heading.setText(heading or NO_SELECTION)
        for i, (name, bar) in enumerate(self.rows):
            visible = i < len(scores)
            name.setVisible(visible)
            bar.setVisible(visible)
            if visible:
                name.setText(str(scores[i][0]))
                score = float(scores[i][1])
                bar.setValue(round(score * 1000))
                # Small scores matter here (they show each class is judged on its own): no "0.000".
                bar.setFormat(f"{score:.3f}" if score >= 0.001 else f"{score:.1e}")


class GridPanel(QGroupBox):
    """The grid view's switch, stride and class, and the head's candidate counts for the frame."""

    changed = pyqtSignal(bool, object, object)  # on, stride | None, class id | None

    def __init__(self) -> None:
        super().__init__("Grid view")
        self.toggle = QCheckBox("Show the grid (G)")
        self.stride_box = QComboBox()
        self.class_box = QComboBox()
        self.counts = QLabel("")
        self.counts.setWordWrap(True)
        self.set_model((8, 16, 32), [])
        row = QHBoxLayout()
        row.addWidget(self.stride_box)
        row.addWidget(self.class_box, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.toggle)
        layout.addLayout(row)
        layout.addWidget(self.counts)
        self.toggle.toggled.connect(lambda _: self._emit())
        self.stride_box.activated.connect(lambda _: self._emit())
        self.class_box.activated.connect(lambda _: self._emit())

    def set_model(self, strides: tuple[int, ...], names: list[str]) -> None:
        """The choices a model offers: its strides and its classes."""
        for box, items in ((self.stride_box, ["all strides", *(f"stride {s}" for s in strides)]),
                           (self.class_box, ["best class", *names])):
            current = box.currentText()
            box.clear()
            box.addItems(items)
            if current in items:
                box.setCurrentText(current)
        self._strides = strides

    def stride(self) -> int | None:
        i = self.stride_box.currentIndex()
        return self._strides[i - 1] if i > 0 else None

    def class_id(self) -> int | None:
        i = self.class_box.currentIndex()
        return i - 1 if i > 0 else None

    def show_counts(self, counts: HeadCounts | None) -> None:
        self.counts.setText(counts_text(counts) if counts is not None else "")

    def _emit(self) -> None:
        self.changed.emit(self.toggle.isChecked(), self.stride(), self.class_id())
