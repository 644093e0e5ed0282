"""Where the video comes from: the open-file / folder / stream dialogs, the Camera menu (filled by a
background probe) and the Recent menu (kept in the app's settings). Each says the user's pick through
``chosen``; opening it is the window's job."""

from __future__ import annotations

from PyQt6.QtCore import QObject, QSettings, pyqtSignal
from PyQt6.QtWidgets import QFileDialog, QInputDialog, QMenu, QWidget

from yolo_app.engine.readers import list_cameras
from yolo_app.gui.controller import ViewerController
from yolo_app.gui.pickers import MEDIA_FILTER

MAX_RECENT = 8


class SourceMenus(QObject):
    chosen = pyqtSignal(str)  # a source as the user gave it: a path, a URL, a camera index, "demo"

    def __init__(self, parent: QWidget, store: QSettings) -> None:
        super().__init__(parent)
        self.parent_widget = parent  # the dialogs' parent
        self.store = store
        self.camera_menu = QMenu("Camera", parent)
        self.camera_menu.addAction("Looking for cameras…").setEnabled(False)
        self.recent_menu = QMenu("Recent", parent)
        self._fill_recent()

    # dialogs -----------------------------------------------------------------------------------
    def open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.parent_widget, "Open a video or image", "", MEDIA_FILTER)
        if path:
            self.chosen.emit(path)

    def open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self.parent_widget, "Open a folder of images or videos")
        if path:
            self.chosen.emit(path)

    def open_stream(self) -> None:
        url, ok = QInputDialog.getText(self.parent_widget, "Open stream", "rtsp://, rtmp:// or http(s):// URL")
        if ok and url.strip():
            self.chosen.emit(url.strip())

    # recent sources ----------------------------------------------------------------------------
    def remember(self, text: str) -> None:
        """A source that opened: the one to start with next time, and first in Recent."""
        self.store.setValue("source", text)
        recent = [text] + [s for s in self.recent() if s != text]
        self.store.setValue("recent", recent[:MAX_RECENT])
        self._fill_recent()

    def recent(self) -> list[str]:
        value = self.store.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])  # QSettings gives one item as a str

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for text in self.recent():
            self.recent_menu.addAction(text, lambda t=text: self.chosen.emit(t))
        self.recent_menu.setEnabled(bool(self.recent()))

    # cameras -----------------------------------------------------------------------------------
    def probe_cameras(self, controller: ViewerController) -> None:
        """Look for cameras on a helper thread: opening each device can take seconds."""
        controller._background("cameras", list_cameras, self._cameras_found)

    def _cameras_found(self, found: object) -> None:
        self.camera_menu.clear()
        if isinstance(found, BaseException) or not found:
            self.camera_menu.addAction("No camera found").setEnabled(False)
            return
        for index in found:  # type: ignore[union-attr]
            self.camera_menu.addAction(f"Camera {index}", lambda i=index: self.chosen.emit(str(i)))
