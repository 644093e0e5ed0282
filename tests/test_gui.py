"""The real window, driven offscreen with pytest-qt on real footage."""

import json
import os
import re
import threading
import time

import av
import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from conftest import read_video, run_cli  # noqa: E402

from yolo_app.gui.main_window import GuiOptions, MainWindow  # noqa: E402

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


def figure(window, key):
    """A status-bar figure as a number ("display 9.8 fps" -> 9.8)."""
    return float(re.search(r"(-?\d+(?:\.\d+)?)", window.status_bar.labels[key].text()).group(1))


def test_the_status_bar_shows_the_real_rates_while_a_file_plays_in_real_time(qtbot, window):
    start = window.painted[0]
    qtbot.waitUntil(lambda: window.painted[0] >= start + 25, timeout=WAIT_MS)  # 2.5 s of the 10-fps clip
    qtbot.wait(600)  # the status refresh after the last paints
    rate = float(window.controller.info.fps)
    assert rate == pytest.approx(10.0, abs=0.1)
    assert 0.7 * rate <= figure(window, "display") <= 1.2 * rate  # painted at the file's own rate
    assert 0.7 * rate <= figure(window, "capture") <= 1.2 * rate  # read in real time, not as fast as it can
    assert 0.7 * rate <= figure(window, "inference") <= 1.2 * rate
    assert figure(window, "latency") > 0 and figure(window, "dropped") >= 0
    labels = window.status_bar.labels
    assert labels["device"].text().startswith("cpu · ") and labels["model"].text() == "yolov8n.pt"


def test_a_recording_holds_exactly_the_frames_that_were_shown(qtbot, window, monkeypatch):
    window.controller.set_paused(True)
    qtbot.wait(600)  # a frame in flight may still land
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
