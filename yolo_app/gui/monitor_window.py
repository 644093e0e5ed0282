"""The monitoring window: a monitor.yaml's cameras live, their zones and lines edited with the mouse and
saved back to the config, live counts, and the events with their evidence.

Widgets only: the monitor (yolo_app.monitor.runner, .camera) does the detection, tracking, zones, events and
evidence. Its model loads off the GUI thread; the newest result of the shown camera is polled (never
queued) and painted as the monitor renders it; events come from the camera threads through a signal.
Closing the window stops the monitor on a background thread, so the GUI never waits for it.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import cv2
import numpy as np
from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHeaderView, QInputDialog, QLabel,
                             QMainWindow, QMessageBox, QSplitter, QTableWidget, QTableWidgetItem, QToolBar,
                             QVBoxLayout, QWidget)

from yolo_app.engine.models import LoadedModel
from yolo_app.engine.sources import redact
from yolo_app.errors import UserError, YoloAppError, describe
from yolo_app.gui.bridge import DisplaySink, ResultBridge, to_qimage
from yolo_app.gui.events_panel import EventsPanel
from yolo_app.gui.geometry_editor import LINE, MASK, SELECT, ZONE, GeometryView, shapes_of, split
from yolo_app.monitor.config import MonitorConfig, load_config, save_geometry
from yolo_app.monitor.camera import CameraMonitor
from yolo_app.monitor.runner import Monitor

POLL_MS = 40  # ~25 Hz: the shown camera's newest result
STATUS_MS = 500
STALE_S = 2.0  # no new frame this long while "running": say so rather than show a frozen frame
STOP_TIMEOUT_S = 8.0


class _Signals(QObject):
    loaded = pyqtSignal(object)  # Monitor
    failed = pyqtSignal(str)
    event = pyqtSignal(object)  # Event, emitted on a camera thread, delivered on the GUI thread
    stopped = pyqtSignal()


def greyed(image: np.ndarray) -> np.ndarray:
    """The last frame, grey and dimmed: plainly not live."""
    grey = (cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) * 0.55).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def counts_text(kind: str, counts: dict | None) -> str:
    if kind == MASK:
        return "ignored: what stands in it"
    if counts is None:
        return "unsaved"
    if kind == ZONE:
        return f"now {counts.get('now', 0)} · entered {counts.get('entered', 0)} · left {counts.get('left', 0)}"
    return f"in {counts.get('in', 0)} · out {counts.get('out', 0)}"


class MonitorWindow(QMainWindow):
    def __init__(self, config: MonitorConfig, model: LoadedModel | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if parent is not None:  # opened from the main window: its own top-level window, gone when closed
            self.setWindowFlag(Qt.WindowType.Window)
            self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        self.config = config
        self.show_held_back = False  # the toolbar's toggle: the filters' held-back boxes, greyed
        self.monitor: Monitor | None = None
        self.stopped = threading.Event()  # set when the monitor has stopped after close (or never ran)
        self.error_box: QMessageBox | None = None
        self._closing = False
        self._drafts: dict[str, list] = {}  # camera -> shapes being edited, kept when switching cameras
        self._last_frame: dict[str, np.ndarray] = {}
        # Each camera's frames arrive drawn (boxes, zones, lines) by its display sink, off this thread.
        self.bridge = ResultBridge()
        self._branch = {cam.name: i for i, cam in enumerate(config.cameras)}
        self._offline_since: dict[str, datetime] = {}
        self._shown_state: tuple | None = None
        self._signals = _Signals()
        self.setWindowTitle(f"Monitor — {config.path.name}")
        self._build_ui()
        self._build_actions()
        self.resize(1320, 860)
        self._signals.loaded.connect(self._loaded)
        self._signals.failed.connect(self._failed)
        self._signals.event.connect(self.events.event_arrived)
        self.bridge.frameReady.connect(self._frame_ready)
        self._poll = QTimer(self)
        self._poll.timeout.connect(self._paint)
        self._status = QTimer(self)
        self._status.timeout.connect(self._update_status)
        self._select_camera(self.camera_box.currentText())
        threading.Thread(target=self._load, args=(model,), name="monitor-load", daemon=True).start()

    # construction --------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.view = GeometryView(f"Loading {self.config.model.weights}…")
        self.camera_box = QComboBox()
        self.camera_box.addItems([c.name for c in self.config.cameras])
        self.counts = QTableWidget(0, 3)
        self.counts.setHorizontalHeaderLabels(("Name", "Kind", "Counts"))
        self.counts.verticalHeader().hide()
        self.counts.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.counts.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.counts.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                    | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.counts.setToolTip("Double-click a name to rename it")
        header = self.counts.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.camera_status = QLabel("")
        self.camera_status.setWordWrap(True)
        self.camera_status.setTextFormat(Qt.TextFormat.RichText)
        self.save_state = QLabel("")
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(4, 0, 0, 0)
        side_layout.addWidget(QLabel("<b>Zones and lines</b>"))
        side_layout.addWidget(self.counts, 1)
        side_layout.addWidget(self.save_state)
        side_layout.addWidget(QLabel("<b>Camera</b>"))
        side_layout.addWidget(self.camera_status)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.view)
        top.addWidget(side)
        top.setStretchFactor(0, 1)
        top.setSizes([960, 340])
        self.events = EventsPanel(self.config.storage, [c.name for c in self.config.cameras])
        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(top)
        main.addWidget(self.events)
        main.setStretchFactor(0, 3)
        main.setStretchFactor(1, 2)
        main.setSizes([540, 280])
        self.setCentralWidget(main)
        self.camera_box.currentTextChanged.connect(self._select_camera)
        self.view.changed.connect(self._geometry_edited)
        self.view.selectionChanged.connect(self._shape_selected)
        self.view.modeChanged.connect(self._mode_changed)
        self.view.renameRequested.connect(self.rename_dialog)
        self.counts.itemChanged.connect(self._name_edited)
        self.counts.itemSelectionChanged.connect(self._row_selected)

    def _build_actions(self) -> None:
        self.actions: dict[str, QAction] = {}
        entries = [
            ("select", "Select / move", "V", lambda: self.view.set_mode(SELECT), True),
            ("zone", "Add zone", "Z", lambda: self.view.set_mode(ZONE), True),
            ("line", "Add line", "L", lambda: self.view.set_mode(LINE), True),
            ("mask", "Add mask", "M", lambda: self.view.set_mode(MASK), True),
            ("rename", "Rename…", "F2", lambda: self.rename_dialog(self.view.selected), False),
            ("delete", "Delete", QKeySequence.StandardKey.Delete, self.view.delete_selected, False),
            ("save", "Save to config", QKeySequence.StandardKey.Save, self.save, False),
            ("revert", "Revert", None, self.revert, False),
        ]
        group = QActionGroup(self)
        for key, text, shortcut, slot, checkable in entries:
            action = QAction(text, self)
            if shortcut is not None:
                action.setShortcut(QKeySequence(shortcut))
            action.setCheckable(checkable)
            if checkable:
                group.addAction(action)
            action.triggered.connect(slot)
            self.addAction(action)
            self.actions[key] = action
        self.actions["select"].setChecked(True)
        held = QAction("Show held-back boxes", self)
        held.setCheckable(True)
        held.setToolTip("Draw the boxes the camera's filters and masks held back, greyed with the filter's name")
        held.toggled.connect(lambda on: setattr(self, "show_held_back", on))
        self.addAction(held)
        self.actions["held"] = held
        self.actions["save"].setToolTip(f"Write this camera's zones, lines and masks into {self.config.path} "
                                        "(the old file is kept as .bak) and apply them at once")
        toolbar = QToolBar("Monitor")
        toolbar.setMovable(False)
        self.addToolBar(toolbar)
        toolbar.addWidget(QLabel(" Camera "))
        toolbar.addWidget(self.camera_box)
        toolbar.addSeparator()
        for key in ("select", "zone", "line", "mask", "rename", "delete"):
            toolbar.addAction(self.actions[key])
        toolbar.addSeparator()
        toolbar.addAction(self.actions["save"])
        toolbar.addAction(self.actions["revert"])
        toolbar.addSeparator()
        toolbar.addAction(self.actions["held"])
        self._update_actions()

    # the monitor's life --------------------------------------------------------------------------------
    def _load(self, model: LoadedModel | None) -> None:
        try:
            monitor = Monitor(self.config, model=model, display=lambda camera: DisplaySink(
                self.bridge, self._branch[camera.cam.name],
                render=lambda result, camera=camera: camera.render(result, held_back=self.show_held_back)))
        except Exception as exc:  # noqa: BLE001 - shown in the window, one line
            self.stopped.set()
            self._signals.failed.emit(describe(exc))
            return
        if self._closing:  # closed while the model loaded (the event loop may be gone): it never runs
            self._stop_in_background(monitor, started=False)
            return
        self._signals.loaded.emit(monitor)

    def _loaded(self, monitor: Monitor) -> None:
        if self._closing:  # closed while the model loaded: it never runs
            self._stop_in_background(monitor, started=False)
            return
        self.monitor = monitor
        monitor.listeners.append(self._signals.event.emit)  # thread-safe: a queued signal
        monitor.start()
        self.view.clear(f"Connecting to {redact(self._camera().cam.source)}…")
        self.events.set_store(monitor.store)
        self._poll.start(POLL_MS)
        self._status.start(STATUS_MS)
        self._update_status()

    def _failed(self, message: str) -> None:
        self.view.clear("The monitor could not start")
        self.show_error("Cannot start the monitor", message)

    def _stop_in_background(self, monitor: Monitor, started: bool = True) -> None:
        def stop() -> None:
            try:
                if not started:
                    monitor.start()  # Monitor.stop() joins the camera threads, which must have started
                monitor.stop(timeout=STOP_TIMEOUT_S)
            finally:
                self.stopped.set()

        threading.Thread(target=stop, name="monitor-stop", daemon=True).start()

    def wait_stopped(self, timeout: float = STOP_TIMEOUT_S + 2) -> bool:
        return self.stopped.wait(timeout)

    # cameras and the live view -------------------------------------------------------------------------
    def _camera(self) -> CameraMonitor | None:
        name = self.camera_box.currentText()
        return self.monitor.cameras.get(name) if self.monitor is not None else None

    def _cam_config(self, name: str):
        if self.monitor is not None and name in self.monitor.cameras:
            return self.monitor.cameras[name].cam
        return self.config.camera(name)

    def _select_camera(self, name: str) -> None:
        if not name:
            return
        previous = getattr(self, "_current", None)
        if previous is not None and previous != name:
            self._drafts[previous] = self.view.shapes  # unsaved edits stay with their camera
        self._current = name
        saved = shapes_of(self._cam_config(name))
        self.view.set_shapes(saved)
        if name in self._drafts:
            self.view.shapes = self._drafts.pop(name)
        self.view.set_mode(SELECT)
        self._shown_state = None
        last = self._last_frame.get(name)
        if last is None:
            self.view.clear("Connecting…" if self.monitor is not None else f"Loading {self.config.model.weights}…")
        self._fill_counts()
        self._paint()

    def _frame_ready(self, branch: int) -> None:
        shown = self.bridge.take(branch)
        if shown is None:
            return
        name = self.config.cameras[branch].name
        self._last_frame[name] = shown.annotated
        if name == self.camera_box.currentText():
            self._paint()

    def _paint(self) -> None:
        """The selected camera's newest frame, and a banner while it is not running (timer and new frames)."""
        cam = self._camera()
        if cam is None:
            return
        name = cam.cam.name
        state = cam.state
        age = cam.last_frame_age
        stale = state == "running" and age is not None and age > STALE_S
        shown = (name, state, int(age) if stale else None, id(self._last_frame.get(name)))
        if shown == self._shown_state:
            return
        self._shown_state = shown
        if state != "offline":
            self._offline_since.pop(name, None)
        frame = self._last_frame.get(name)
        banner = self._banner(cam, state, age, stale)
        if frame is None:
            self.view.clear(banner or "Waiting for the first frame…")
            self.view.set_banner(None)
            return
        self.view.show_image(to_qimage(frame if banner is None else greyed(frame)))
        self.view.set_banner(banner)

    def _banner(self, cam: CameraMonitor, state: str, age: float | None, stale: bool) -> str | None:
        if state == "running":
            return f"No new frames for {age:.0f} s…" if stale else None
        if state == "offline":
            since = self._offline_since.setdefault(
                cam.cam.name, datetime.now() - timedelta(seconds=age if age is not None else cam.cam.offline_after))
            return f"Offline since {since:%H:%M:%S} — reconnecting…"
        if state == "reconnecting":
            return "Reconnecting…"
        if state == "starting":
            return f"Connecting to {redact(cam.cam.source)}…"
        return "The recording has ended" if state == "ended" else state

    def _update_status(self) -> None:
        if self.monitor is None:
            return
        try:
            status = self.monitor.snapshot()["cameras"]
        except Exception:  # noqa: BLE001 - the store closed under us while stopping
            return
        current = status.get(self.camera_box.currentText())
        if current is not None:
            age = current["last_frame_age_s"]
            state_colour = "#2a8a2a" if current["state"] == "running" else "#b07800"
            self.camera_status.setText(
                f"<span style='color:{state_colour};font-weight:bold'>{current['state']}</span> · "
                f"{current['fps']:.1f} FPS · events today {current['events_today']}<br>"
                f"last frame {'—' if age is None else f'{age:.1f} s ago'} · reconnects {current['reconnects']} · "
                f"motion skipped {current['motion_skipped_fraction']:.0%}")
        self._update_counts()

    # zones and lines -----------------------------------------------------------------------------------
    def _fill_counts(self) -> None:
        self.counts.blockSignals(True)
        self.counts.setRowCount(len(self.view.shapes))
        for row, shape in enumerate(self.view.shapes):
            name = QTableWidgetItem(shape.name)
            kind = QTableWidgetItem(shape.kind)
            kind.setFlags(kind.flags() & ~Qt.ItemFlag.ItemIsEditable)
            value = QTableWidgetItem("")
            value.setFlags(value.flags() & ~Qt.ItemFlag.ItemIsEditable)
            for col, item in enumerate((name, kind, value)):
                self.counts.setItem(row, col, item)
        if self.view.selected is not None:
            self.counts.selectRow(self.view.selected)
        self.counts.blockSignals(False)
        self._update_counts()
        self._update_actions()

    def _update_counts(self) -> None:
        cam = self._camera()
        live = cam.counts() if cam is not None else {}
        running = {(s.kind, s.name) for s in shapes_of(cam.cam)} if cam is not None else set()
        self.counts.blockSignals(True)
        for row, shape in enumerate(self.view.shapes):
            item = self.counts.item(row, 2)
            if item is not None:
                counts = live.get(shape.name) if (shape.kind, shape.name) in running else None
                edited = shape.key() not in self.view.saved
                text = counts_text(shape.kind, counts)
                item.setText(text + (" (edited)" if edited and counts is not None else ""))
        self.counts.blockSignals(False)

    def _geometry_edited(self) -> None:
        if self.counts.rowCount() != len(self.view.shapes) or any(
                self.counts.item(r, 0).text() != s.name for r, s in enumerate(self.view.shapes)):
            self._fill_counts()
        self._update_counts()
        self._update_actions()

    def _update_actions(self) -> None:
        dirty = self.view.dirty
        has = self.view.selected is not None
        self.actions["rename"].setEnabled(has)
        self.actions["delete"].setEnabled(has)
        self.actions["save"].setEnabled(dirty)
        self.actions["revert"].setEnabled(dirty)
        self.save_state.setText("<i>Unsaved changes — Save writes them to the config</i>" if dirty
                                else f"Saved in {self.config.path.name}")

    def _shape_selected(self, index: int) -> None:
        self.counts.blockSignals(True)
        if index < 0:
            self.counts.clearSelection()
        elif index < self.counts.rowCount():
            self.counts.selectRow(index)
        self.counts.blockSignals(False)
        self._update_actions()

    def _row_selected(self) -> None:
        rows = self.counts.selectionModel().selectedRows()
        index = rows[0].row() if rows else None
        if index != self.view.selected:
            self.view.selected = index
            self.view.update()
            self._update_actions()

    def _mode_changed(self, mode: str) -> None:
        self.actions[mode].setChecked(True)

    def _name_edited(self, item: QTableWidgetItem) -> None:
        if item.column() != 0 or item.row() >= len(self.view.shapes):
            return
        problem = self.view.rename(item.row(), item.text())
        if problem is not None:
            self.counts.blockSignals(True)
            item.setText(self.view.shapes[item.row()].name)
            self.counts.blockSignals(False)
            self.show_error("Cannot rename", problem)

    def rename_dialog(self, index: int | None) -> None:
        if index is None or index < 0 or index >= len(self.view.shapes):
            return
        shape = self.view.shapes[index]
        name, ok = QInputDialog.getText(self, f"Rename {shape.kind}", "Name:", text=shape.name)
        if ok:
            problem = self.view.rename(index, name)
            if problem is not None:
                self.show_error("Cannot rename", problem)

    def save(self) -> bool:
        """Write the shown camera's zones, lines and masks into the config, then run with them at once."""
        name = self.camera_box.currentText()
        zones, lines, masks = split(self.view.shapes)
        try:
            config = save_geometry(self.config, name, zones, lines, masks)
        except (YoloAppError, OSError) as exc:
            self.show_error("Cannot save the zones and lines", describe(exc))
            return False
        self.config = config
        cam = config.camera(name)
        if self.monitor is not None:
            self.monitor.cameras[name].set_geometry(list(cam.zones), list(cam.lines), list(cam.masks))
        self.view.set_shapes(shapes_of(cam))
        self._fill_counts()
        self.statusBar().showMessage(
            f"Saved {len(zones)} zones, {len(lines)} lines and {len(masks)} masks of {name} to {config.path}", 6000)
        return True

    def revert(self) -> None:
        self.view.set_shapes(shapes_of(self._cam_config(self.camera_box.currentText())))
        self._fill_counts()

    # errors and closing --------------------------------------------------------------------------------
    def show_error(self, title: str, message: str) -> None:
        """A dialog that does not block the video."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.show()
        self.error_box = box

    def _unsaved(self) -> list[str]:
        names = [name for name, shapes in self._drafts.items()
                 if {s.key() for s in shapes} != {s.key() for s in shapes_of(self._cam_config(name))}]
        if self.view.dirty:
            names.append(self.camera_box.currentText())
        return names

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        unsaved = self._unsaved() if not self._closing else []
        if unsaved and self.isVisible():
            answer = QMessageBox.question(
                self, "Unsaved zones and lines", f"The zones and lines of {', '.join(unsaved)} were edited and "
                "not saved. Close and discard the changes?",
                QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Discard:
                event.ignore()
                return
        if not self._closing:
            self._closing = True
            self._poll.stop()
            self._status.stop()
            self.events.set_store(None)
            if self.events.player is not None:
                self.events.player.close()
            if self.monitor is not None:
                self._stop_in_background(self.monitor)
        event.accept()


def open_monitor_dialog(parent: QWidget) -> MonitorWindow | None:
    """File ▸ Monitor…: pick a monitor.yaml and open its monitoring window."""
    path, _ = QFileDialog.getOpenFileName(parent, "Open a monitor config", "", "Monitor config (*.yaml *.yml);;"
                                                                               "All files (*)")
    if not path:
        return None
    try:
        config = load_config(path)
    except UserError as exc:
        QMessageBox.warning(parent, "Cannot open the monitor config", str(exc))
        return None
    window = MonitorWindow(config, parent=parent)
    window.show()
    return window

