"""The playback row under the video: play/pause, step, replay, seek bar and time, speed, loop and track."""

from __future__ import annotations

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from yolo_app.engine.types import SourceInfo
from yolo_app.gui.controller import ViewerController

SPEEDS = ("Real time", "As fast as possible")
TICKS_PER_SECOND = 10  # the seek slider's resolution: tenths of a second


def clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{secs:04.1f}"


class PlaybackBar(QWidget):
    """Drives the controller's playback and shows where it stands.

    ``moved`` fires on a seek or a replay: the window then drops its "End of video" banner.
    """

    moved = pyqtSignal()

    def __init__(self, controller: ViewerController) -> None:
        super().__init__()
        self.controller = controller
        self.duration: float | None = None  # seconds; None for live sources and unknown lengths
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
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)  # laid out like the row it used to be inside the window
        for widget in (self.play_button, self.step_button, self.replay_button, self.seek_slider, self.time_label,
                       self.speed_box, self.loop_box, self.track_box):
            layout.addWidget(widget, 1 if widget is self.seek_slider else 0)
        # Keyboard focus stays on the window, whose shortcuts (Space, Right, S, R…) must keep working.
        for widget in (self.play_button, self.step_button, self.replay_button, self.speed_box, self.loop_box,
                       self.track_box):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._connect()

    def _connect(self) -> None:
        c = self.controller
        self.play_button.clicked.connect(self.toggle_pause)
        self.step_button.clicked.connect(self.step)
        self.replay_button.clicked.connect(self.replay)
        self.seek_slider.sliderReleased.connect(self._seek_to_slider)
        # A click on the track moves the handle a page: seek once the slider has taken its new value.
        pages = (QSlider.SliderAction.SliderPageStepAdd.value, QSlider.SliderAction.SliderPageStepSub.value)
        self.seek_slider.actionTriggered.connect(
            lambda action: QTimer.singleShot(0, self._seek_to_slider) if action in pages else None)
        self.speed_box.currentIndexChanged.connect(lambda i: c.set_realtime(i == 0))
        self.loop_box.toggled.connect(c.set_loop)
        self.track_box.toggled.connect(c.set_track)

    def _seek_to_slider(self) -> None:
        self.seek(self.seek_slider.value() / TICKS_PER_SECOND)

    # actions -----------------------------------------------------------------------------------
    def toggle_pause(self) -> None:
        """Space / the play button: pause or resume; at the end of a video, play it again."""
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
        self.moved.emit()
        self.controller.seek(seconds)

    def replay(self) -> None:
        self.replay_button.hide()
        self.moved.emit()
        self.controller.set_paused(False)
        self.play_button.setText("Pause")
        self.controller.restart(0.0)

    # what the controller reports ---------------------------------------------------------------
    def source_opened(self, info: SourceInfo) -> None:
        """A new source: seeking, stepping and speed only where a file has a known length."""
        self.replay_button.hide()
        duration = (info.frame_count / float(info.fps)) if info.frame_count and info.fps else None
        self.duration = duration
        self.seek_slider.setEnabled(bool(duration) and not info.live)
        self.seek_slider.setRange(0, int((duration or 0) * TICKS_PER_SECOND))
        self.step_button.setEnabled(not info.live)
        self.speed_box.setEnabled(not info.live)

    def show_position(self, pts_s: float | None) -> None:
        """The shown frame's time, unless the user is dragging the handle (it would jump back under them)."""
        if self.seek_slider.isSliderDown() or pts_s is None:
            return
        self.seek_slider.setValue(int(pts_s * TICKS_PER_SECOND))
        total = clock(self.duration) if self.duration else "live"
        self.time_label.setText(f"{clock(pts_s)} / {total}")

    def file_ended(self) -> None:
        """A file played to its end: offer to play it again."""
        self.replay_button.show()
        self.play_button.setText("Replay")
