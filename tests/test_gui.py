"""The real window, driven offscreen with pytest-qt on real footage."""

import json
import os
import queue
import re
import socket
import threading
import time
from fractions import Fraction
from functools import partial

import av
import cv2
import numpy as np
import pytest

from conftest import PERSON_VIDEO, make_clip, read_video, run_cli, wait_for
from yolo_app.engine.inference import Detector
from yolo_app.engine.readers import FrameReader
from yolo_app.engine.supervisor import SourceSupervisor
from yolo_app.engine.types import ChannelPolicy, SourceInfo, SourceKind
from yolo_app.gui.main_window import GuiOptions, MainWindow

WAIT_MS = 30000


pytestmark = pytest.mark.usefixtures("isolated_qt_settings")


@pytest.fixture
def window(open_window):
    return open_window(WAIT_MS)


def engine_threads():
    return [t for t in threading.enumerate() if t.name.startswith(("capture:", "inference", "sink:", "display"))]


def show_frame_at(qtbot, win, seconds):
    """Pause, seek, and wait for the frame at that time to be painted."""
    win.controller.set_paused(True)
    before = win.painted[0]
    win.playback.seek(seconds)
    target = round(seconds * 10)
    qtbot.waitUntil(lambda: win.painted[0] > before and win.last_shown[0].result.frame.index == target,
                    timeout=WAIT_MS)
    return win.last_shown[0]


def choose(box, text):
    """Pick ``text`` in a combo box as a user does (``activated`` fires only on a user's choice)."""
    box.setCurrentText(text)
    box.activated.emit(box.currentIndex())


def test_boxes_are_drawn_on_the_video(qtbot, window):
    shown = show_frame_at(qtbot, window, 1.5)  # a person is in the clip here
    det = shown.result.detections
    assert len(det) and "person" in det.data["class_name"]
    x1, y1, x2, y2 = det.xyxy[0].astype(int)
    raw, drawn = shown.result.frame.image, shown.annotated
    assert np.abs(drawn[y1:y2, x1:x1 + 3].astype(int) - raw[y1:y2, x1:x1 + 3].astype(int)).mean() > 20
    assert (shown.image.width(), shown.image.height()) == (768, 432)
    assert window.detections.table.rowCount() == len(det)
    assert window.panes[0].view.image is shown.image


def test_a_threshold_change_applies_to_the_next_results(qtbot, window):
    many = len(show_frame_at(qtbot, window, 2.0).result.detections)
    window.conf_slider.slider.setValue(95)
    assert window.controller.detectors[0].settings.conf == 0.95
    few = len(show_frame_at(qtbot, window, 2.0).result.detections)
    assert many > few


def test_the_class_filter_hides_a_class(qtbot, window):
    assert "person" in show_frame_at(qtbot, window, 1.5).result.detections.data["class_name"]
    window.class_filter.set_checked("person", False)
    assert "person" not in list(show_frame_at(qtbot, window, 1.5).result.detections.data["class_name"])


def test_pause_stops_frame_updates_and_step_shows_the_next_frame(qtbot, window):
    window.playback.toggle_pause()
    assert window.playback.play_button.text() == "Play"
    qtbot.wait(600)  # a frame in flight may still land
    painted = window.painted[0]
    qtbot.wait(1000)
    assert window.painted[0] == painted
    index = window.last_shown[0].result.frame.index
    window.playback.step()
    qtbot.waitUntil(lambda: window.painted[0] == painted + 1, timeout=WAIT_MS)
    assert window.last_shown[0].result.frame.index == index + 1


def test_seek_jumps_to_the_time_asked(qtbot, window):
    assert show_frame_at(qtbot, window, 3.0).result.frame.pts_s == pytest.approx(3.0)
    assert window.playback.time_label.text().startswith("00:03.0")


def test_snapshot_writes_a_png_and_its_detections(qtbot, window):
    shown = show_frame_at(qtbot, window, 1.5)
    png, js = window.snapshot()
    image = cv2.imread(str(png))
    assert image.shape == (432, 768, 3) and np.array_equal(image, shown.annotated)
    record = json.loads(js.read_text())
    assert record["frame"] == 15 and len(record["detections"]) == len(shown.result.detections)


MODEL_MS = 240000  # the window's first model load in a test run and its warm-up (50 s on two loaded cores)
T0 = 1000.0  # the fake clock's start
U = 0.125  # its step in the tests below, s: a binary fraction, so every figure they check is exact


class FakeClock:
    """``time`` for the modules that stamp, rate and paint frames: its ``monotonic`` moves only when the test
    sets ``now``; everything else (perf_counter, time) is the real one."""

    MODULES = ("yolo_app.engine.capture", "yolo_app.engine.inference", "yolo_app.engine.stats",
               "yolo_app.gui.main_window")

    def __init__(self, monkeypatch) -> None:
        self.now = T0
        for module in self.MODULES:
            monkeypatch.setattr(f"{module}.time", self)

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


class Gate:
    """Holds each detection of the window's inference thread until the test lets it through (``let_through``):
    the test decides when the model takes and finishes every frame. ``next`` says what the call carries."""

    def __init__(self, monkeypatch, identify=lambda images: len(images)) -> None:
        self.entered: queue.Queue = queue.Queue()
        self._turns = threading.Semaphore(0)
        self._open = threading.Event()
        detect = Detector.detect

        def gated(detector, images, *args, **kwargs):
            if threading.current_thread().name == "inference0":
                self.entered.put(identify(images))
                while not self._turns.acquire(timeout=0.05) and not self._open.is_set():
                    pass
            return detect(detector, images, *args, **kwargs)

        monkeypatch.setattr(Detector, "detect", gated)

    def next(self, qtbot, timeout: int = WAIT_MS, unless=lambda: False):
        """What the next held call carries, once it is held (the window's events go on meanwhile); None when
        ``unless()`` comes true first."""
        qtbot.waitUntil(lambda: not self.entered.empty() or unless(), timeout=timeout)
        return None if self.entered.empty() else self.entered.get_nowait()

    def let_through(self) -> None:
        self._turns.release()

    def open(self) -> None:
        """Hold nothing any more (the test is over)."""
        self._open.set()


class LiveCamera(FrameReader):
    """A live camera the test drives: it sends ``images[i]`` when told (``send``), and answers on a port of its own,
    so the supervisor that reopens live sources (as it does once the models are loaded) finds it there."""

    def __init__(self, images: list) -> None:
        self.images = images
        self._port = socket.socket()
        self._port.bind(("127.0.0.1", 0))
        self._port.listen(16)
        height, width = images[0].shape[:2]
        self.info = SourceInfo(SourceKind.STREAM, f"rtsp://127.0.0.1:{self._port.getsockname()[1]}/cam", width,
                               height, Fraction(10), None, live=True)
        self._sends: queue.Queue = queue.Queue()

    def open(self, spec) -> "LiveCamera":
        return self

    def send(self, i: int) -> None:
        self._sends.put(i)

    def hang_up(self) -> None:
        self._sends.put(None)
        self._port.close()

    def frames(self):
        while (i := self._sends.get()) is not None:
            yield self.images[i], None, None


def painted_frames(win, monkeypatch) -> list[int]:
    """The index of every frame the first view paints, in the order painted."""
    shown = []
    note = win.controller.note_shown

    def noting(branch, pts):  # called as each frame is painted, with what was painted in last_shown
        if branch == 0:
            shown.append(win.last_shown[0].result.frame.index)
        note(branch, pts)

    monkeypatch.setattr(win.controller, "note_shown", noting)
    return shown


def test_a_live_source_faster_than_the_model_drops_the_frames_it_missed_and_the_status_bar_gives_the_figures(
        qtbot, clips, weights, monkeypatch):
    """Six frames, 0-5; the model holds frame 0 while 1-4 come, so 1, 2 and 3 are replaced unseen. On a fake
    clock that moves in steps of U, with each frame read, detected and painted at a time the test sets, every
    figure is exact:

        frame      0   4   5
        read at    0   4   9     (1, 2, 3 read at 1, 2, 3)
        detected   5   7  10
        painted    6   8  12
    """
    images = read_video(clips["person"])[0][:6]
    camera = LiveCamera(images)
    monkeypatch.setattr("yolo_app.gui.controller.open_reader", camera.open)
    monkeypatch.setattr("yolo_app.gui.controller.SourceSupervisor", partial(SourceSupervisor, opener=camera.open))
    clock = FakeClock(monkeypatch)
    index_of = {id(image): i for i, image in enumerate(images)}
    gate = Gate(monkeypatch, lambda batch: [index_of[id(image)] for image in batch])
    win = MainWindow(GuiOptions(source=camera.info.uri, weights=str(weights), backend="torch"))
    qtbot.addWidget(win)
    win.show()
    shown = painted_frames(win, monkeypatch)
    try:
        qtbot.waitUntil(lambda: win.controller.pipeline is not None and win.controller.pipeline.inference[0].ready
                        .is_set(), timeout=MODEL_MS)
        pipeline = win.controller.pipeline
        inference = pipeline.inference[0]

        def read(i, at):  # capture reads frame i at that time (the clock holds until it has counted it)
            clock.now = T0 + at * U
            camera.send(i)
            qtbot.waitUntil(lambda: pipeline.capture.rate.count == i + 1, timeout=WAIT_MS)

        def detect_and_paint(detected, painted):  # the model finishes its frame, the window paints it later
            clock.now = T0 + detected * U
            inferred, before = inference.rate.count, len(shown)
            gate.let_through()
            # The window paints only while this (its) thread runs Qt's events: not during this wait.
            wait_for(lambda: inference.rate.count == inferred + 1, WAIT_MS / 1e3, "the detection")
            clock.now = T0 + painted * U
            qtbot.waitUntil(lambda: len(shown) == before + 1, timeout=WAIT_MS)

        read(0, at=0)
        assert gate.next(qtbot) == [0]  # the model holds frame 0 …
        for i in range(1, 5):
            read(i, at=i)  # … while 1-4 come, each replacing the one waiting
        detect_and_paint(detected=5, painted=6)
        assert gate.next(qtbot) == [4]  # the newest is next: 1, 2 and 3 are dropped
        detect_and_paint(detected=7, painted=8)
        read(5, at=9)
        assert gate.next(qtbot) == [5]
        detect_and_paint(detected=10, painted=12)
        assert shown == [0, 4, 5] and win.painted[0] == 3
        stats = pipeline.stats(0)
        assert (stats.captured, stats.inferred, stats.dropped) == (6, 3, 3)  # dropped: 6 read - 3 detected

        clock.now = T0 + 15 * U
        win._update_status()
        labels = {key: label.text() for key, label in win.status_bar.labels.items()}
        assert labels == {  # a rate: the intervals between its events of the last 2 s, over the time since the first
            "capture": "capture 2.7 fps",  # 5 intervals between reads in 15 U (1.875 s): 2.67
            "inference": "inference 1.6 fps",  # 2 in 15 - 5 = 10 U: 1.6
            "display": "display 1.8 fps",  # 2 in 15 - 6 = 9 U: 1.78
            "latency": "latency 500 ms",  # the median of capture to paint: 6 - 0, 8 - 4, 12 - 9 U = 750, 500, 375 ms
            "dropped": "dropped 3",
            "device": f"cpu · {win.controller.detectors[0].model.runtime}",
            "model": "yolov8n.pt",
        }
        assert labels["device"].startswith("cpu · torch")
    finally:
        gate.open()
        if win.controller.pipeline is not None:
            win.controller.pipeline.capture.stop()  # so the supervisor does not reopen the camera as it hangs up
        camera.hang_up()
        win.close()


def test_every_frame_of_a_file_is_read_detected_and_painted_once_in_order_with_none_dropped(
        qtbot, weights, monkeypatch, tmp_path):
    """The model lets each frame through only once the one before it is painted: the view cannot fall behind, so
    each of the file's 12 frames must be painted once, in order, from a capture that skipped none."""
    clip = make_clip(PERSON_VIDEO, tmp_path / "twelve.mp4", 12, start=50)
    gate = Gate(monkeypatch)
    win = MainWindow(GuiOptions(source=str(clip), weights=str(weights), backend="torch"))
    qtbot.addWidget(win)
    win.show()
    win.playback.speed_box.setCurrentIndex(1)  # as fast as the model goes: the file's frames are all kept
    shown = painted_frames(win, monkeypatch)
    try:
        while (carried := gate.next(qtbot, MODEL_MS, unless=win.banner.isVisible)) is not None:  # till the end
            assert carried == 1  # one frame a call
            painted = len(shown)
            gate.let_through()
            qtbot.waitUntil(lambda: len(shown) == painted + 1, timeout=WAIT_MS)  # noqa: B023 - read at once
        assert win.banner.text() == "End of video"
        assert shown == list(range(12)) and win.painted[0] == 12
        pipeline = win.controller.pipeline
        assert pipeline.policy is ChannelPolicy.ALL
        stats = pipeline.stats(0)
        assert (stats.captured, stats.inferred, stats.dropped) == (12, 12, 0)
        win._update_status()
        assert win.status_bar.labels["dropped"].text() == "dropped 0"
        assert win.status_bar.labels["model"].text() == "yolov8n.pt"
    finally:
        gate.open()
        win.close()


def test_a_recording_holds_exactly_the_frames_that_were_shown(qtbot, window, monkeypatch):
    window.controller.set_paused(True)
    capture = window.controller.pipeline.capture
    # Nothing in flight before recording starts: every frame captured (from frame 0, no seek) has been painted, so
    # no frame drawn before the recorder started is painted after it.
    qtbot.waitUntil(lambda: window.last_shown[0].result.frame.index == capture.captured - 1, timeout=WAIT_MS)
    shown = []
    note = window.controller.note_shown

    def noting(branch, pts):  # called as each frame is painted, with what was painted in last_shown
        shown.append((pts, window.last_shown[branch].annotated.copy()))
        note(branch, pts)

    monkeypatch.setattr(window.controller, "note_shown", noting)
    window.toggle_record()
    assert window.status_bar.rec_label.text().startswith("●")
    for n in range(1, 9):
        window.playback.step()
        qtbot.waitUntil(lambda: len(shown) == n, timeout=WAIT_MS)  # noqa: B023 - read at once
    path, frames = window.stop_recording()
    assert window.status_bar.rec_label.text() == ""
    decoded, _, size = read_video(path)
    assert frames == len(decoded) == len(shown) == 8 and size == (768, 432)
    with av.open(str(path)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert times == pytest.approx([pts - shown[0][0] for pts, _ in shown], abs=0.002)  # at the frames' own times
    for (_, painted), recorded in zip(shown, decoded):
        assert cv2.PSNR(painted, recorded) > 30  # the painted picture, boxes included, H.264 aside
    assert cv2.PSNR(shown[0][1], decoded[1]) < cv2.PSNR(shown[0][1], decoded[0])  # and in the order shown


def test_compare_mode_shows_two_models_on_the_same_frame_each_with_its_own_figures(qtbot, window,
                                                                                    trained_models):
    other = trained_models["yolo11n"]
    window.model_bar.start_compare(str(other))
    qtbot.waitUntil(lambda: 1 in window.last_shown and window.panes[1].isVisible(), timeout=WAIT_MS)
    for seconds in (1.5, 2.7):
        show_frame_at(qtbot, window, seconds)
        target = round(seconds * 10)
        qtbot.waitUntil(lambda: window.last_shown[1].result.frame.index == target, timeout=WAIT_MS)  # noqa: B023
        a, b = window.last_shown[0].result, window.last_shown[1].result
        assert a.frame.index == b.frame.index == target and a.frame.image is b.frame.image  # one captured frame
        assert (a.model_id, b.model_id) == ("yolov8n.pt", other.name)
    qtbot.wait(600)  # the captions' refresh
    for pane, shown in zip(window.panes[:2], (window.last_shown[0], window.last_shown[1])):
        caption = pane.caption.text()
        assert caption.startswith(f"{shown.result.model_id} · ")
        assert re.search(r" · \d+\.\d fps · latency \d+ ms · ", caption)
        assert caption.endswith(f" · {len(shown.result.detections)} detections")
    window.model_bar.compare_chosen("Compare: off")
    assert not window.panes[1].isVisible()


def test_a_bad_file_shows_an_error_and_the_window_keeps_playing(qtbot, window, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 40)
    window.open_source(str(bad))
    qtbot.waitUntil(lambda: window.error_box is not None and window.error_box.isVisible(), timeout=WAIT_MS)
    assert "not a readable video" in window.error_box.text()
    painted = window.painted[0]
    qtbot.waitUntil(lambda: window.painted[0] > painted + 2, timeout=WAIT_MS)


def test_a_model_that_fails_to_load_leaves_the_old_one_running(qtbot, window, tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_text("not a model")
    old = window.controller.detectors[0]
    window.model_bar.select_model(str(bad))
    qtbot.waitUntil(lambda: window.error_box is not None and window.error_box.isVisible(), timeout=WAIT_MS)
    assert "not a YOLO model file" in window.error_box.text()
    assert window.controller.detectors[0] is old


def test_the_end_of_a_video_offers_replay(qtbot, window):
    window.playback.speed_box.setCurrentIndex(1)  # as fast as possible
    qtbot.waitUntil(lambda: window.playback.replay_button.isVisible(), timeout=WAIT_MS)
    assert window.banner.text() == "End of video"
    window.playback.replay()
    qtbot.waitUntil(lambda: window.last_shown[0].result.frame.index < 5, timeout=WAIT_MS)


def test_a_seek_after_the_end_of_a_video_shows_that_frame(qtbot, window):
    window.playback.speed_box.setCurrentIndex(1)
    qtbot.waitUntil(lambda: window.playback.replay_button.isVisible(), timeout=WAIT_MS)
    assert show_frame_at(qtbot, window, 1.5).result.frame.index == 15
    assert not window.banner.isVisible()


def test_closing_the_window_stops_every_thread_within_two_seconds(qtbot, clips, weights):
    win = MainWindow(GuiOptions(source=str(clips["bottle"]), weights=str(weights)))
    win.show()
    qtbot.waitUntil(lambda: 0 in win.last_shown, timeout=WAIT_MS)
    assert engine_threads()
    start = time.monotonic()
    win.close()
    assert time.monotonic() - start < 2.0
    assert not engine_threads()


def test_settings_are_remembered_between_runs(qtbot, clips, weights):
    win = MainWindow(GuiOptions(source=str(clips["bottle"]), weights=str(weights)))
    qtbot.waitUntil(lambda: 0 in win.last_shown, timeout=WAIT_MS)
    win.conf_slider.slider.setValue(40)
    win.close()
    again = MainWindow(GuiOptions())
    qtbot.addWidget(again)
    assert again.conf_slider.value() == 0.40
    assert again.source_text == str(clips["bottle"])
    assert again.model_bar.model_box.currentText() == weights.name
    again.close()


@pytest.mark.slow
def test_the_gui_command_takes_a_screenshot_of_the_real_window(tmp_path, clips):
    shot = tmp_path / "window.png"
    env_before = os.environ.get("QT_QPA_PLATFORM")
    proc = run_cli("gui", str(clips["person"]), "--quit-after", "6", "--screenshot", str(shot), timeout=120)
    assert env_before == "offscreen"
    assert proc.returncode == 0, proc.stderr
    first = float(re.search(r"first boxes ([\d.]+) s after the window was started", proc.stdout).group(1))
    assert 0.3 < first < 60
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600


def test_track_shows_ids_on_the_boxes_and_in_the_table(qtbot, window):
    window.playback.track_box.setChecked(True)
    qtbot.waitUntil(lambda: window.last_shown[0].result.detections.tracker_id is not None
                    and (window.last_shown[0].result.detections.tracker_id >= 0).any(), timeout=WAIT_MS)
    ids = [window.detections.table.item(r, 2).text() for r in range(window.detections.table.rowCount())]
    assert any(text.startswith("#") for text in ids)


def test_the_grid_view_toggles_with_g_and_follows_the_stride_and_class_chosen(qtbot, window):
    from PyQt6.QtCore import Qt

    plain = show_frame_at(qtbot, window, 1.5)
    assert plain.result.grid is None and plain.result.counts.candidates == 5040
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert window.grid_panel.toggle.isChecked() and window.actions["grid"].isChecked()
    shown = show_frame_at(qtbot, window, 1.5)
    assert shown.result.grid is not None and shown.result.grid.shown_stride is None
    text = window.grid_panel.counts.text()
    assert text.startswith("5040 candidates") and f"> {len(shown.result.detections)} after NMS" in text
    assert np.abs(shown.annotated.astype(int) - plain.annotated.astype(int)).mean() > 3  # the heat map and lines
    window.grid_panel.stride_box.setCurrentText("stride 16")
    window.grid_panel.class_box.setCurrentText("bottle")
    window.grid_panel.stride_box.activated.emit(2)
    shown = show_frame_at(qtbot, window, 1.5)
    assert (shown.result.grid.shown_stride, shown.result.grid.class_id) == (16, 39)
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert show_frame_at(qtbot, window, 1.5).result.grid is None


def test_a_row_or_a_click_on_a_box_shows_its_class_scores(qtbot, window):
    from PyQt6.QtCore import QPoint, Qt

    from yolo_app.gui.video_view import fit_rect

    shown = show_frame_at(qtbot, window, 1.5)
    det = shown.result.detections
    assert window.detections.table.item(0, 4).text().startswith(f"{det.data['class_name'][0]} ")
    assert window.detections.table.item(0, 4).text().count(" · ") == 2  # top 3 by default
    window.detections.top_k.setValue(5)
    shown = show_frame_at(qtbot, window, 1.5)
    det = shown.result.detections
    assert window.detections.table.item(0, 4).text().count(" · ") == 4
    assert window.detections.table.horizontalHeaderItem(4).text() == "top 5 classes"
    window.detections.table.selectRow(0)
    name, bar = window.scores.rows[0]
    assert det.data["class_name"][0] in window.scores.heading.text()
    assert name.text() == det.data["class_name"][0] and bar.value() == round(float(det.confidence[0]) * 1000)
    assert window.panes[0].view.highlight == pytest.approx(tuple(det.xyxy[0]))

    view = window.panes[0].view
    window.detections.select_row(None)
    window.selection = None
    target = fit_rect(768, 432, view.width(), view.height())
    x1, y1, x2, y2 = det.xyxy[0]
    scale = target.width() / 768
    centre = QPoint(round(target.x() + (x1 + x2) / 2 * scale), round(target.y() + (y1 + y2) / 2 * scale))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=centre)
    assert window.selection is not None and window.detections.table.selectionModel().selectedRows()
    assert det.data["class_name"][0] in window.scores.heading.text()
    assert not any(bx1 <= 2 / scale and by1 <= 2 / scale for bx1, by1, _, _ in det.xyxy)  # the corner is empty
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(round(target.x() + 2), round(target.y() + 2)))
    assert window.selection is None and window.panes[0].view.highlight is None
    assert window.scores.heading.text().startswith("Click a box")


def test_the_backend_picker_reloads_the_model_on_that_backend(qtbot, window):
    window.playback.loop_box.setChecked(True)  # a first export of the other backend can outlast the 4-second clip
    auto = window.controller.detectors[0].model.backend
    assert auto in ("openvino", "onnx")  # auto on a CPU: the faster of the two here
    other = "onnx" if auto == "openvino" else "openvino"
    choose(window.model_bar.backend_box, other)
    qtbot.waitUntil(lambda: window.controller.detectors[0] is not None
                    and window.controller.detectors[0].model.backend == other, timeout=WAIT_MS)
    before = window.painted[0]
    qtbot.waitUntil(lambda: window.painted[0] > before + 3, timeout=WAIT_MS)  # still playing, on the other backend
    window._update_status()
    assert window.status_bar.labels["device"].text() == f"cpu · {window.controller.detectors[0].model.runtime}"
    assert window.status_bar.labels["device"].text().startswith(f"cpu · {other} ")  # e.g. "cpu · onnx fp32"


def test_the_precision_picker_reloads_the_model_in_that_precision_and_is_remembered(qtbot, window):
    window.playback.loop_box.setChecked(True)
    bar = window.model_bar
    choose(bar.backend_box, "openvino")
    qtbot.waitUntil(lambda: window.controller.detectors[0] is not None
                    and window.controller.detectors[0].model.backend == "openvino", timeout=WAIT_MS)
    choose(bar.precision_box, "fp32")
    qtbot.waitUntil(lambda: window.controller.detectors[0] is not None
                    and window.controller.detectors[0].model.precision == "fp32", timeout=WAIT_MS)
    before = window.painted[0]
    qtbot.waitUntil(lambda: window.painted[0] > before + 3, timeout=WAIT_MS)
    window._update_status()
    assert window.status_bar.labels["device"].text().startswith("cpu · openvino fp32")
    window.close()
    assert window.store.value("precision") == "fp32"  # the next window starts in it


def test_int8_in_the_precision_picker_is_quantized_on_the_open_video(qtbot, window):
    window.playback.loop_box.setChecked(True)
    bar = window.model_bar
    choose(bar.precision_box, "int8")
    qtbot.waitUntil(lambda: window.controller.detectors[0] is not None
                    and window.controller.detectors[0].model.precision == "int8", timeout=120000)
    model = window.controller.detectors[0].model
    assert model.backend == "openvino" and model.calibration.name == "person.mp4"  # the clip that is open
    before = window.painted[0]
    qtbot.waitUntil(lambda: window.painted[0] > before + 3, timeout=WAIT_MS)
    window._update_status()
    assert window.status_bar.labels["device"].text().startswith("cpu · openvino int8")
