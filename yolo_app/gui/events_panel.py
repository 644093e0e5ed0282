"""The monitoring view's events: a table newest first with snapshot thumbnails, filters by camera and
type, and the evidence of a row on double-click (its clip played, else its snapshot shown large).

Rows come from the monitor's EventStore; snapshot and clip paths are relative to the storage folder and
may arrive a few seconds after the row (clips are written after their ``post`` seconds), so the table
is refreshed on every new event and every few seconds.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from pathlib import Path

from PyQt6.QtCore import QSize, Qt, QTimer
from PyQt6.QtGui import QImage, QImageReader, QPixmap
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                             QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from yolo_app.engine.readers import open_reader
from yolo_app.engine.sources import parse_source
from yolo_app.errors import describe
from yolo_app.gui.bridge import to_qimage
from yolo_app.gui.video_view import VideoView
from yolo_app.monitor.events import EVENT_TYPES, Event, EventStore

ALL_CAMERAS = "All cameras"
ALL_TYPES = "All types"
THUMB_W = 96
MAX_ROWS = 300
CACHE_SIZE = 600
REFRESH_MS = 3000
COLUMNS = ("Snapshot", "Time", "Camera", "Event", "Object", "Zone / line", "Dir", "Conf", "Clip")
ID_ROLE = Qt.ItemDataRole.UserRole


def local_time(stamp: str) -> str:
    """An ISO-8601 UTC time as local HH:MM:SS (with the date when it is not today)."""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return stamp
    return moment.strftime("%H:%M:%S" if moment.date() == datetime.now().date() else "%Y-%m-%d %H:%M:%S")


class Thumbnails:
    """Snapshot thumbnails, THUMB_W pixels wide, decoded at that size and kept (least recently used out)."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()

    def get(self, relpath: str | None) -> QPixmap | None:
        if not relpath:
            return None
        if relpath in self._cache:
            self._cache.move_to_end(relpath)
            return self._cache[relpath]
        reader = QImageReader(str(self.storage / relpath))
        size = reader.size()
        if not size.isValid() or size.width() <= 0:
            return None  # not there (yet, or deleted by retention): tried again on the next refresh
        reader.setScaledSize(QSize(THUMB_W, max(1, round(THUMB_W * size.height() / size.width()))))
        image = reader.read()
        if image.isNull():
            return None
        pixmap = QPixmap.fromImage(image)
        self._cache[relpath] = pixmap
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return pixmap


class EventsPanel(QWidget):
    def __init__(self, storage: Path, cameras: list[str]) -> None:
        super().__init__()
        self.storage = storage
        self.store: EventStore | None = None
        self.thumbnails = Thumbnails(storage)
        self.events: list[Event] = []
        self._shown: tuple = ()
        self.player: QDialog | None = None
        self.error_box: QMessageBox | None = None
        self.camera_box = QComboBox()
        self.camera_box.addItems([ALL_CAMERAS, *cameras])
        self.type_box = QComboBox()
        self.type_box.addItems([ALL_TYPES, *EVENT_TYPES])
        self.count_label = QLabel("")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setIconSize(QSize(THUMB_W, THUMB_W))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(round(THUMB_W * 9 / 16) + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, THUMB_W + 8)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        self.table.setToolTip("Double-click an event to play its clip (or see its snapshot)")
        filters = QHBoxLayout()
        filters.addWidget(QLabel("<b>Events</b>"))
        filters.addWidget(self.camera_box)
        filters.addWidget(self.type_box)
        filters.addStretch(1)
        filters.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        self.camera_box.currentTextChanged.connect(lambda _: self.refresh())
        self.type_box.currentTextChanged.connect(lambda _: self.refresh())
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_evidence(self.events[row]))
        self._soon = QTimer(self)  # new events come in bursts: one query for a burst
        self._soon.setSingleShot(True)
        self._soon.setInterval(200)
        self._soon.timeout.connect(self.refresh)
        self._timer = QTimer(self)  # evidence paths arrive after the rows
        self._timer.timeout.connect(self.refresh)

    def set_store(self, store: EventStore | None) -> None:
        self.store = store
        if store is None:
            self._timer.stop()
            self._soon.stop()
            return
        self._timer.start(REFRESH_MS)
        self.refresh()

    def event_arrived(self, _event: object = None) -> None:
        if self.store is not None and not self._soon.isActive():
            self._soon.start()

    def refresh(self) -> None:
        if self.store is None:
            return
        camera = self.camera_box.currentText()
        kind = self.type_box.currentText()
        try:
            events = self.store.query(camera=None if camera == ALL_CAMERAS else camera,
                                      type=None if kind == ALL_TYPES else kind, limit=MAX_ROWS, newest_first=True)
        except Exception as exc:  # noqa: BLE001 - a busy or closed database: keep the rows shown, say why
            self.count_label.setText(f"cannot read events: {describe(exc)}")
            return
        shown = tuple((e.id, e.snapshot_path, e.clip_path, e.evidence_deleted_at) for e in events)
        if shown == self._shown:  # nothing new: keep the selection and the scroll position
            return
        self._fill(events)
        self._shown = shown

    def _fill(self, events: list[Event]) -> None:
        selected = self.selected_event()
        self.events = events
        self.table.setRowCount(len(events))
        for row, e in enumerate(events):
            thumb = QTableWidgetItem()
            pixmap = self.thumbnails.get(e.snapshot_path) if not e.evidence_deleted_at else None
            if pixmap is not None:
                thumb.setData(Qt.ItemDataRole.DecorationRole, pixmap)
            else:
                thumb.setText("deleted" if e.evidence_deleted_at else "—")
                thumb.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            thumb.setData(ID_ROLE, e.id)
            values = (local_time(e.started_at), e.camera, e.type,
                      f"{e.label}#{e.track_id}" if e.label and e.track_id is not None else (e.label or ""),
                      e.zone or "", e.direction or "", "" if e.confidence is None else f"{e.confidence:.2f}",
                      "▶" if e.clip_path and not e.evidence_deleted_at else "")
            self.table.setItem(row, 0, thumb)
            for col, text in enumerate(values, start=1):
                item = QTableWidgetItem(text)
                item.setToolTip(e.started_at if col == 1 else text)
                self.table.setItem(row, col, item)
            if selected is not None and e.id == selected.id:
                self.table.selectRow(row)
        full = " (newest shown)" if len(events) == MAX_ROWS else ""
        self.count_label.setText(f"{len(events)} events{full}")

    def selected_event(self) -> Event | None:
        rows = self.table.selectionModel().selectedRows()
        return self.events[rows[0].row()] if rows and rows[0].row() < len(self.events) else None

    def row_of(self, event_id: int) -> int | None:
        for row, e in enumerate(self.events):
            if e.id == event_id:
                return row
        return None

    # evidence ------------------------------------------------------------------------------------------
    def open_evidence(self, event: Event) -> QDialog | None:
        """Play the event's clip, else show its snapshot; a clear message when there is neither."""
        title = f"{event.camera} · {event.type} · {local_time(event.started_at)}"
        if event.evidence_deleted_at:
            self._message("Evidence deleted", f"The snapshot and clip of this event were deleted by retention "
                                              f"({local_time(event.evidence_deleted_at)}).")
            return None
        for relpath, kind in ((event.clip_path, "clip"), (event.snapshot_path, "snapshot")):
            if not relpath:
                continue
            path = self.storage / relpath
            if not path.is_file():
                self._message(f"The {kind} is missing", f"The {kind} of this event is not on disk any more:\n{path}")
                return None
            try:
                dialog: QDialog = ClipPlayer(path, title, self) if kind == "clip" else SnapshotDialog(path, title, self)
            except Exception as exc:  # noqa: BLE001 - a damaged file: say so, keep the window
                self._message(f"Cannot open the {kind}", f"{path}\n{describe(exc)}")
                return None
            if self.player is not None:
                self.player.close()
            self.player = dialog
            dialog.show()
            return dialog
        self._message("No evidence", "This event has no clip or snapshot (its alert does not ask for them, or the "
                                     "clip is still being written: it appears a few seconds after the event).")
        return None

    def _message(self, title: str, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.show()
        self.error_box = box


class SnapshotDialog(QDialog):
    def __init__(self, path: Path, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        image = QImage(str(path))
        if image.isNull():
            raise ValueError("not a readable image")
        self.setWindowTitle(f"Snapshot — {title}")
        self.view = VideoView("")
        self.view.show_image(image)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(QLabel(str(path)))
        self.resize(min(image.width(), 1280) + 24, min(image.height(), 720) + 48)


class ClipPlayer(QDialog):
    """Plays an evidence clip at its own rate with the engine's reader; Replay starts it again."""

    def __init__(self, path: Path, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.setWindowTitle(f"Clip — {title}")
        self.view = VideoView("")
        self.frames_shown = 0
        self.position = QLabel("")
        self.play_button = QPushButton("Pause")
        self.play_button.clicked.connect(self.toggle)
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.position, 1)
        controls.addWidget(QLabel(path.name))
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addLayout(controls)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._next)
        self._reader = None
        self._frames = None
        self._open()
        info = self._reader.info
        self.resize(min(info.width, 1280) + 24, min(info.height, 720) + 60)
        self._timer.start(round(1000 / float(info.fps or 10)))

    def _open(self) -> None:
        self._close_reader()
        self._reader = open_reader(parse_source(str(self.path))[0])
        self._frames = self._reader.frames()
        self._index = 0
        self._next()  # the first frame at once: the dialog never opens black

    def _next(self) -> None:
        try:
            image, pts, _ = next(self._frames)
        except StopIteration:
            self._timer.stop()
            self.play_button.setText("Replay")
            return
        except Exception as exc:  # noqa: BLE001 - a truncated clip: show what played, say why it stopped
            self._timer.stop()
            self.play_button.setText("Replay")
            self.position.setText(describe(exc))
            return
        self._index += 1
        self.frames_shown += 1
        self.view.show_image(to_qimage(image))
        self.position.setText(f"{pts or 0:.1f} s · frame {self._index}")

    def toggle(self) -> None:
        if self.play_button.text() == "Replay":
            self._open()
            self._timer.start()
            self.play_button.setText("Pause")
        elif self._timer.isActive():
            self._timer.stop()
            self.play_button.setText("Play")
        else:
            self._timer.start()
            self.play_button.setText("Pause")

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def done(self, result: int) -> None:
        self._timer.stop()
        self._close_reader()
        super().done(result)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._timer.stop()
        self._close_reader()
        super().closeEvent(event)
