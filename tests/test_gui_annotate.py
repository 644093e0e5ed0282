"""The "Annotate videos…" dialog, driven offscreen with pytest-qt on real clips and the real model."""

import threading
import time

import pytest

from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QMessageBox  # noqa: E402

from conftest import PERSON_VIDEO, frame_lines, make_clip  # noqa: E402
from yolo_app.gui import annotate_dialog  # noqa: E402
from yolo_app.gui.annotate_dialog import AnnotateDialog  # noqa: E402
from yolo_app.gui.main_window import GuiOptions, MainWindow, app_settings  # noqa: E402

RUN_MS = 120_000
LONG_FRAMES = 300


pytestmark = pytest.mark.usefixtures("isolated_qt_settings")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """Longer than one checkpoint (250 frames), so a cancelled run can really be resumed."""
    return make_clip(PERSON_VIDEO, tmp_path_factory.mktemp("long") / "walk.mp4", LONG_FRAMES)


@pytest.fixture
def warnings(monkeypatch):
    """What QMessageBox.warning would have shown, instead of blocking the test."""
    shown: list[str] = []
    monkeypatch.setattr(annotate_dialog.QMessageBox, "warning", lambda parent, title, text: shown.append(text))
    return shown


@pytest.fixture
def dialog(qtbot, weights, tmp_path):
    dlg = AnnotateDialog(app_settings())
    qtbot.addWidget(dlg)
    dlg.model_box.show_weights(str(weights))
    dlg.device_box.setCurrentText("cpu")
    dlg.out_edit.setText(str(tmp_path / "out"))
    dlg.show()
    yield dlg
    dlg.runner.cancel()
    assert dlg.runner.join(10.0)


def job_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "annotate-job"]


def log_lines(dlg: AnnotateDialog) -> list[str]:
    return [dlg.log.item(i).text() for i in range(dlg.log.count())]


def start_and_wait(qtbot, dlg: AnnotateDialog) -> None:
    qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    assert not dlg.start_button.isEnabled() and dlg.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: dlg.start_button.isEnabled(), timeout=RUN_MS)


def test_two_clips_are_annotated_with_tracks_and_csv_in_the_background(qtbot, dialog, clips, tmp_path, warnings,
                                                                       monkeypatch):
    opened = []
    monkeypatch.setattr(annotate_dialog.QDesktopServices, "openUrl", opened.append)
    dialog.add_sources([str(clips["person"]), str(clips["bottle"])])
    dialog.track_box.setChecked(True)
    dialog.export_boxes["csv"].setChecked(True)
    start_and_wait(qtbot, dialog)
    assert dialog.summary.text() == "2 files: 2 complete, 0 failed", log_lines(dialog)
    out = tmp_path / "out"
    for name in ("person", "bottle"):
        for suffix in (".annotated.mp4", ".detections.jsonl", ".detections.csv"):
            assert (out / f"{name}{suffix}").is_file()
        assert "track_id" in frame_lines(out / f"{name}.detections.jsonl")[-1]["detections"][0]
    lines = log_lines(dialog)
    assert any(line.startswith("person: 40 frames") and "tracks" in line for line in lines)
    assert any(line.startswith("bottle: 30 frames") for line in lines)
    assert "bottle: exported bottle.detections.csv" in lines
    assert dialog.overall_bar.value() == dialog.overall_bar.maximum() > 0
    assert not warnings and not job_threads()
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened] == [str(out)]


def test_cancel_stops_at_once_and_start_again_resumes_to_the_full_record(qtbot, dialog, long_clip, tmp_path):
    out = tmp_path / "out"
    dialog.add_sources([str(long_clip)])
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    checkpoint = out / "walk.resume" / "checkpoint.json"
    qtbot.waitUntil(lambda: checkpoint.is_file() or dialog.start_button.isEnabled(), timeout=RUN_MS)
    assert checkpoint.is_file() and dialog.runner.running, log_lines(dialog)  # neither ended nor failed before it
    assert dialog.file_bar.value() > 0 and "FPS" in dialog.overall_label.text()
    cancelled = time.monotonic()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=5000)
    assert time.monotonic() - cancelled < 5 and dialog.runner.join(1.0)
    assert sorted(p.name for p in out.glob("*.partial.*")) == ["walk.annotated.partial.mp4",
                                                                "walk.detections.partial.jsonl"]
    assert (out / "walk.resume").is_dir()
    assert dialog.summary.text() == "1 file: 0 complete, 0 failed — cancelled"
    assert any("Start continues where it stopped" in line for line in log_lines(dialog))

    assert dialog.resume_box.isChecked()  # the default
    start_and_wait(qtbot, dialog)
    assert dialog.summary.text() == "1 file: 1 complete, 0 failed", log_lines(dialog)
    assert any("resumed at frame 250" in line for line in log_lines(dialog))
    assert [line["frame"] for line in frame_lines(out / "walk.detections.jsonl")] == list(range(LONG_FRAMES))
    assert not list(out.glob("*.partial.*")) and not (out / "walk.resume").exists()


def test_closing_while_running_asks_then_cancels_and_joins_the_worker(qtbot, dialog, long_clip, monkeypatch):
    asked: list[str] = []

    def answer(parent, title, text):
        asked.append(text)
        return QMessageBox.StandardButton.No if len(asked) == 1 else QMessageBox.StandardButton.Yes

    monkeypatch.setattr(annotate_dialog.QMessageBox, "question", answer)
    dialog.add_sources([str(long_clip)])
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.file_bar.value() > 0, timeout=RUN_MS)
    assert not dialog.close() and dialog.isVisible() and dialog.runner.running  # "No": the run goes on
    start = time.monotonic()
    assert dialog.close() and not dialog.isVisible()
    assert time.monotonic() - start < 5 and not job_threads() and len(asked) == 2


def test_a_bad_output_folder_or_no_input_is_a_one_line_message(qtbot, dialog, clips, tmp_path, warnings):
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    dialog.add_sources([str(clips["bottle"])])
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("a file, not a folder")
    dialog.out_edit.setText(str(not_a_folder))
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert warnings[0] == "add at least one video, image or folder to annotate"
    assert warnings[1].startswith(f"cannot write to output folder {not_a_folder}") and "\n" not in warnings[1]
    assert dialog.start_button.isEnabled() and not job_threads()


def test_a_model_that_fails_to_load_is_reported_and_nothing_runs(qtbot, dialog, clips, tmp_path, warnings):
    broken = tmp_path / "broken.pt"
    broken.write_text("not a model")
    dialog.model_box.show_weights(str(broken))
    dialog.add_sources([str(clips["bottle"])])
    start_and_wait(qtbot, dialog)
    assert len(warnings) == 1 and "not a YOLO model file" in warnings[0]
    assert log_lines(dialog)[-1] == f"error: {warnings[0]}" and dialog.summary.text() == "Not started"


def test_the_file_menu_opens_the_dialog_and_the_live_view_keeps_running_beside_a_run(
        qtbot, long_clip, weights, tmp_path, monkeypatch):
    monkeypatch.setattr(annotate_dialog.QMessageBox, "question", lambda *_: QMessageBox.StandardButton.Yes)
    win = MainWindow(GuiOptions(source=str(long_clip), weights=str(weights)))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: 0 in win.last_shown, timeout=RUN_MS)
    action = win.actions["annotate"]
    assert action.shortcut().toString() == "Ctrl+Shift+A"
    assert action in win.menuBar().actions()[0].menu().actions()
    action.trigger()
    dlg = win.annotate_dialog
    assert dlg is not None and dlg.isVisible() and not dlg.isModal()
    assert dlg.sources() == [str(long_clip)]  # the window's current file
    assert dlg.model_box.currentText() == weights.name
    dlg.out_edit.setText(str(tmp_path / "out"))
    qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.file_bar.value() > 0, timeout=RUN_MS)
    painted = win.painted[0]
    qtbot.waitUntil(lambda: win.painted[0] > painted + 5, timeout=RUN_MS)  # both run at once
    assert dlg.runner.running
    win.close()  # asks the dialog to close: the run is cancelled and joined
    assert not dlg.isVisible() and not job_threads()


def test_the_dialog_remembers_its_settings(qtbot, dialog, clips, tmp_path):
    dialog.track_box.setChecked(True)
    dialog.export_boxes["mot"].setChecked(True)
    dialog.resume_box.setChecked(False)
    dialog.conf_slider.set_value(0.4)
    dialog.every_spin.setValue(5)
    dialog.close()
    again = AnnotateDialog(app_settings())
    qtbot.addWidget(again)
    assert again.track_box.isChecked() and again.export_boxes["mot"].isChecked()
    assert again.export_boxes["mot"].isEnabled() and not again.export_boxes["csv"].isChecked()
    assert not again.resume_box.isChecked() and again.conf_slider.value() == 0.4 and again.every_spin.value() == 5
    assert again.out_edit.text() == str(tmp_path / "out")
    again.track_box.setChecked(False)
    assert not again.export_boxes["mot"].isEnabled()
