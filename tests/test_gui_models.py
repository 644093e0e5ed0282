"""The Models dialog and the second stage in the live window (offscreen, real footage)."""

import os

import pytest
import torch
import torchvision

from conftest import SHARED_WEIGHTS  # noqa: E402
from yolo_app.engine.render import detection_labels  # noqa: E402
from yolo_app.zoo.classifier import default_transform, save_checkpoint  # noqa: E402

WAIT_MS = 60000


pytestmark = pytest.mark.usefixtures("isolated_qt_settings")


@pytest.fixture
def window(open_window):
    return open_window(WAIT_MS, backend="torch")


def test_models_dialog_lists_the_zoo_and_adds_a_weights_file_that_then_classifies_live(
        qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_APP_WEIGHTS", os.pathsep.join([str(SHARED_WEIGHTS), str(tmp_path / "added")]))
    dialog = window.open_models_dialog()
    dialog.weights_dir = tmp_path / "added"
    qtbot.waitUntil(lambda: len(dialog.entries) > 30, timeout=WAIT_MS)
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert {"yolov8n", "yolov9e", "resnet152", "vit_b_16", "legacy_xception"} <= set(names)
    assert dialog.table.item(names.index("yolov8n"), 7).text() == str(SHARED_WEIGHTS / "yolov8n.pt")

    # A bare state dict under any name becomes the selected model's weights file.
    torch.save(torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict(), tmp_path / "x.pth")
    dialog.select("mobilenet_v3_small")
    added = dialog.add_weights(str(tmp_path / "x.pth"))
    assert added == tmp_path / "added" / "mobilenet_v3_small.pth"
    qtbot.waitUntil(lambda: any(e.name == "mobilenet_v3_small" and e.weights_path == str(added)
                                for e in dialog.entries), timeout=WAIT_MS)
    dialog.select("mobilenet_v3_small")
    assert dialog.buttons["classifier"].isEnabled() and not dialog.buttons["detector"].isEnabled()
    with qtbot.waitSignal(window.controller.classifierChanged, timeout=WAIT_MS):
        dialog.buttons["classifier"].click()
    window.controller.set_loop(True)

    def labelled():
        shown = window.last_shown.get(0)
        det = shown.result.detections if shown else None
        return det is not None and len(det) and det.data.get("classification") is not None \
            and det.data["classification"][0] is not None
    qtbot.waitUntil(labelled, timeout=WAIT_MS)
    label = detection_labels(window.last_shown[0].result.detections)[0]
    assert label.startswith("person ") and " · " in label  # an ImageNet name from the random head


def test_a_checkpoint_from_the_command_line_classifies_and_a_missing_classifier_is_a_dialog(qtbot, window, tmp_path):
    module = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=2)
    ckpt = save_checkpoint(tmp_path / "c.pt", module, "mobilenet_v3_small", "torchvision", ["a", "b"],
                           default_transform("mobilenet_v3_small", "torchvision").scaled(64))
    with qtbot.waitSignal(window.controller.classifierChanged, timeout=WAIT_MS):
        window.controller.set_classifier(str(ckpt))
    assert window.controller.classifier.classifier.classes == ["a", "b"]
    window.controller.set_classifier("resnet50")  # no weights on this machine
    qtbot.waitUntil(lambda: window.error_box is not None and window.error_box.isVisible(), timeout=WAIT_MS)
    assert "no weights for resnet50" in window.error_box.text()
    assert window.controller.classifier is not None  # the working one stays
