"""Where engine results meet Qt.

``DisplaySink`` runs in its own engine thread: it draws the boxes, makes a QImage that owns its
memory, and drops it into the ``ResultBridge``'s latest-value slot (a newer result replaces one not
yet painted). The GUI thread is woken by a queued signal and only paints what it takes from the slot.
A recording, when on, is encoded in the same sink thread from the very frames that are shown.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QImage

from yolo_app.engine.render import FrameRenderer
from yolo_app.engine.sinks import Sink, VideoSink
from yolo_app.engine.types import ChannelPolicy, Result, SourceInfo


@dataclass(frozen=True, eq=False)
class Shown:
    """One annotated frame ready to paint."""

    branch: int
    result: Result
    annotated: np.ndarray  # BGR with boxes, for snapshots
    image: QImage  # the same pixels as a QImage that owns its memory


class ResultBridge(QObject):
    """A latest-value slot per branch plus a signal that says 'something new to paint'."""

    frameReady = pyqtSignal(int)

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._slots: dict[int, Shown] = {}

    def publish(self, shown: Shown) -> None:
        with self._lock:
            pending = shown.branch in self._slots
            self._slots[shown.branch] = shown
        if not pending:  # one queued wake-up per unpainted frame at most: the GUI never falls behind
            self.frameReady.emit(shown.branch)

    def take(self, branch: int) -> Shown | None:
        with self._lock:
            return self._slots.pop(branch, None)

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()


def to_qimage(bgr: np.ndarray) -> QImage:
    height, width = bgr.shape[:2]
    return QImage(bgr.data, width, height, 3 * width, QImage.Format.Format_BGR888).copy()


class Recorder:
    """Records what the view shows to an MP4 at the frames' own times. It outlives pipelines, so a
    seek or a speed change does not cut the file; a new source ends it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sink: VideoSink | None = None

    def start(self, path: Path, info: SourceInfo) -> None:
        sink = VideoSink(path, info, timing="pts")
        with self._lock:
            old, self._sink = self._sink, sink
        if old is not None:
            old.close(True)

    def write(self, annotated: np.ndarray, pts_s: float | None) -> None:
        with self._lock:
            if self._sink is not None:
                self._sink.write_image(annotated, pts_s)

    def stop(self) -> tuple[Path, int] | None:
        """Finish the file; its path and frame count, or None when nothing was recorded."""
        with self._lock:
            sink, self._sink = self._sink, None
        if sink is None:
            return None
        sink.close(complete=sink.frames > 0)  # an empty recording leaves no file
        return (sink.path, sink.frames) if sink.frames else None

    @property
    def frames(self) -> int:
        """Frames in the recording so far (0 when not recording)."""
        with self._lock:
            return self._sink.frames if self._sink is not None else 0

    @property
    def active(self) -> bool:
        return self._sink is not None


class DisplaySink(Sink):
    """Feeds the window. LATEST policy: if painting falls behind, old results are dropped here."""

    policy = ChannelPolicy.LATEST

    def __init__(self, bridge: ResultBridge, branch: int, recorder: Recorder | None = None,
                 render: Callable[[Result], np.ndarray] | None = None) -> None:
        self.name = f"display{branch}"
        self.bridge = bridge
        self.branch = branch
        self.recorder = recorder
        self.render = render  # how the frame is drawn (the monitor adds its zones and lines); None: the boxes
        self._renderers: dict[tuple[int, int], FrameRenderer] = {}

    def write(self, result: Result) -> None:
        frame = result.frame
        if self.render is not None:
            annotated = self.render(result)
        else:
            renderer = self._renderers.setdefault((frame.width, frame.height),
                                                  FrameRenderer(frame.width, frame.height))
            annotated = renderer.render_result(result)  # with the grid view under the boxes when it is on
        if self.recorder is not None:  # before it can be painted: a recording stopped after a paint holds that frame
            self.recorder.write(annotated, frame.pts_s)
        self.bridge.publish(Shown(self.branch, result, annotated, to_qimage(annotated)))
