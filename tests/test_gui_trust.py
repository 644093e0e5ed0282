"""The window asks before it unpickles a checkpoint outside Ultralytics' format, and loads exported models
(offscreen, real footage, the real YOLOv8n checkpoint)."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QMessageBox  # noqa: E402

from yolo_app.gui import pickers  # noqa: E402
from yolo_app.gui.annotate_dialog import AnnotateDialog  # noqa: E402
from yolo_app.gui.main_window import app_settings  # noqa: E402
from yolo_app.gui.model_bar import COMPARE_OFF  # noqa: E402
from yolo_app.gui.pickers import BROWSE  # noqa: E402
from yolo_app.gui.trust import LOAD_ANYWAY  # noqa: E402

WAIT_MS = 60000

pytestmark = pytest.mark.usefixtures("isolated_qt_settings")


class Touch:
    """Unpickles as ``Path.touch(marker)``: code outside the checkpoint format that leaves a trace."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return type(self.marker).touch, (self.marker,)


@pytest.fixture(scope="module")
def checkpoint(weights):
    return torch.load(weights, map_location="cpu", weights_only=False)  # the shared, trusted file


def needs_trust(checkpoint, path, marker):
    """A working YOLOv8n checkpoint that also runs code when it is fully unpickled (it creates ``marker``)."""
    torch.save({**checkpoint, "note": Touch(marker)}, path)
    return path


class Answers:
    """QMessageBox.exec replaced: record each question and click the button named ``answer``."""

    def __init__(self, monkeypatch):
        self.answer = "Cancel"
        self.asked: list[QMessageBox] = []
        monkeypatch.setattr(QMessageBox, "exec", lambda box: self._exec(box))

    def _exec(self, box):
        self.asked.append(box)
        buttons = {b.text().replace("&", ""): b for b in box.buttons()}
        assert set(buttons) == {LOAD_ANYWAY, "Cancel"}
        assert box.defaultButton() is buttons["Cancel"] and box.escapeButton() is buttons["Cancel"]
        buttons[self.answer].click()
        return 0


@pytest.fixture
def answers(monkeypatch):
    return Answers(monkeypatch)


@pytest.fixture
def window(open_window):
    return open_window(WAIT_MS, backend="torch")


def test_cancel_keeps_the_model_and_load_anyway_loads_it_once_per_session(qtbot, window, checkpoint, answers,
                                                                          tmp_path):
    marker = tmp_path / "ran"
    path = needs_trust(checkpoint, tmp_path / "custom.pt", marker)
    old = window.controller.detectors[0]

    window.model_bar.select_model(str(path))  # what the picker, Browse… and the Models dialog do
    qtbot.waitUntil(lambda: len(answers.asked) == 1, timeout=WAIT_MS)
    question = answers.asked[0].text()
    assert "custom.pt" in question and "outside the Ultralytics checkpoint format" in question
    assert "could run" in question
    assert str(path) in answers.asked[0].informativeText()
    assert window.controller.detectors[0] is old and not marker.exists()
    assert window.model_bar.model_box.currentText() == "yolov8n.pt"
    assert window.error_box is None  # a choice, not an error
    painted = window.painted[0]
    qtbot.waitUntil(lambda: window.painted[0] > painted + 2, timeout=WAIT_MS)  # the old model keeps running

    window.model_bar.start_compare(str(path))  # the same question for the second view; Cancel closes it again
    qtbot.waitUntil(lambda: len(answers.asked) == 2, timeout=WAIT_MS)
    assert window.model_bar.compare_box.currentText() == COMPARE_OFF and len(window.controller.detectors) == 1
    assert not window.panes[1].isVisible() and not marker.exists()

    answers.answer = LOAD_ANYWAY
    window.model_bar.select_model(str(path))
    qtbot.waitUntil(lambda: window.controller.detectors[0] is not old, timeout=WAIT_MS)
    assert len(answers.asked) == 3 and marker.exists()
    assert window.controller.detectors[0].model.path == path
    assert window.model_bar.model_box.currentText() == "custom.pt"

    window.model_bar.select_model(str(window.controller.detectors[0].model.path))  # trusted this session: no question
    before = window.controller.detectors[0]
    qtbot.waitUntil(lambda: window.controller.detectors[0] is not before, timeout=WAIT_MS)
    assert len(answers.asked) == 3

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed: ask again
    answers.answer = "Cancel"
    current = window.controller.detectors[0]
    window.model_bar.select_model(str(path))
    qtbot.waitUntil(lambda: len(answers.asked) == 4, timeout=WAIT_MS)
    assert window.controller.detectors[0] is current


def test_the_annotate_dialog_asks_too_and_runs_only_after_load_anyway(qtbot, clips, checkpoint, answers, tmp_path):
    marker = tmp_path / "ran"
    path = needs_trust(checkpoint, tmp_path / "custom.pt", marker)
    dlg = AnnotateDialog(app_settings())
    qtbot.addWidget(dlg)
    dlg.model_box.show_weights(str(path))
    dlg.device_box.setCurrentText("cpu")
    dlg.backend_box.setCurrentText("torch")
    dlg.out_edit.setText(str(tmp_path / "out"))
    dlg.add_sources([str(clips["bottle"])])
    dlg.show()

    qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.start_button.isEnabled(), timeout=WAIT_MS)
    assert len(answers.asked) == 1 and "custom.pt" in answers.asked[0].text()
    assert dlg.summary.text() == "Not started" and not marker.exists()
    assert not list((tmp_path / "out").glob("bottle.*"))

    answers.answer = LOAD_ANYWAY
    qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.start_button.isEnabled(), timeout=WAIT_MS)
    assert len(answers.asked) == 2 and marker.exists()
    assert dlg.summary.text() == "1 file: 1 complete, 0 failed"
    assert (tmp_path / "out" / "bottle.detections.jsonl").is_file()
    dlg.runner.join(10.0)


def test_browse_offers_exported_models_and_an_openvino_xml_runs_in_the_window(qtbot, window, weights, tmp_path,
                                                                             monkeypatch):
    from ultralytics import YOLO

    window.controller.set_loop(True)  # the clip plays on while the export is made
    copy = shutil.copy(weights, tmp_path / "v8.pt")  # the shared checkpoint's folder is read-only
    folder = YOLO(str(copy)).export(format="openvino", imgsz=320)
    xml = next(p for p in (tmp_path / "v8_openvino_model").glob("*.xml"))
    assert str(tmp_path) in str(folder)
    offered = []

    def choose(parent, title, folder, filters):
        offered.append(filters)
        return str(xml), filters.split(";;")[0]

    monkeypatch.setattr(pickers.QFileDialog, "getOpenFileName", choose)
    old = window.controller.detectors[0]
    window.model_bar.model_box.setCurrentText(BROWSE)
    window.model_bar.model_chosen(BROWSE)
    assert offered and offered[0].startswith("Models (*.pt *.onnx *.engine *.xml)")
    qtbot.waitUntil(lambda: window.controller.detectors[0] is not old, timeout=WAIT_MS)
    model = window.controller.detectors[0].model
    assert model.backend == "openvino" and model.exported and model.input_hw == (320, 320)
    assert window.model_bar.model_box.currentText() == xml.name
    qtbot.waitUntil(lambda: window.last_shown[0].result.model_id == xml.name, timeout=WAIT_MS)
    assert window.error_box is None
