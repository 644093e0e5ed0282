"""The toolbar's model pickers: detector, device, backend, precision, head and a second model to compare (or the
same model's other head).

They ask the controller for a model and show what it loaded: a failed, cancelled or declined load puts the
picker back on the model still running, so the pickers never claim a model that is not there.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from yolo_app.engine.device import available_devices
from yolo_app.engine.models import LoadedModel
from yolo_app.gui.controller import ViewerController
from yolo_app.gui.pickers import HEAD_CHOICES, HEAD_LABELS, HEAD_TIP, ModelPicker, head_label
from yolo_app.settings import BACKENDS, PRECISIONS

COMPARE_OFF = "Compare: off"
COMPARE_HEADS = "Compare: other head"  # the detector's own model with its other head (YOLOv10, YOLO26)


class ModelBar(QWidget):
    compareClosed = pyqtSignal()  # the second view is gone: hide its pane

    def __init__(self, controller: ViewerController) -> None:
        super().__init__()
        self.controller = controller
        self.model_box = ModelPicker()
        self.compare_box = ModelPicker((COMPARE_OFF, COMPARE_HEADS))
        self.device_box = QComboBox()
        self.device_box.addItems(available_devices())
        self.device_box.setCurrentText(controller.device)
        self.backend_box = QComboBox()
        self.backend_box.addItems(BACKENDS)
        self.backend_box.setCurrentText(controller.backend)
        self.backend_box.setToolTip("What runs the network; auto: OpenVINO or ONNX Runtime on a CPU, TensorRT or "
                                    "PyTorch on an NVIDIA GPU. The first use of an export takes a few seconds.")
        self.precision_box = QComboBox()
        self.precision_box.addItems(PRECISIONS)
        self.precision_box.setCurrentText(controller.precision)
        self.precision_box.setToolTip("The network's number format; auto: fp16 on a CUDA GPU, OpenVINO's own default "
                                      "on a CPU (bf16 where the CPU computes it natively), fp32 elsewhere. fp32 gives "
                                      "PyTorch's numbers exactly.")
        self.head_box = QComboBox()
        self.head_box.addItems(HEAD_CHOICES)
        self.head_box.setCurrentText(HEAD_LABELS[controller.nms])
        self.head_box.setToolTip(HEAD_TIP + " A model with one head runs it.")
        self.show_heads(None)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for caption, box in ((" Model ", self.model_box), (" Device ", self.device_box),
                             (" Backend ", self.backend_box), (" Precision ", self.precision_box),
                             (" Head ", self.head_box), (" ", self.compare_box)):
            layout.addWidget(QLabel(caption))
            layout.addWidget(box)
        c = controller
        # activated, not currentIndexChanged: only the user's picks load a model, not show_weights().
        self.model_box.activated.connect(lambda _: self.model_chosen(self.model_box.currentText()))
        self.compare_box.activated.connect(lambda _: self.compare_chosen(self.compare_box.currentText()))
        self.device_box.activated.connect(lambda _: c.set_device(self.device_box.currentText()))
        self.backend_box.activated.connect(lambda _: c.set_device(c.device, self.backend_box.currentText()))
        self.precision_box.activated.connect(
            lambda _: c.set_device(c.device, precision=self.precision_box.currentText()))
        self.head_box.activated.connect(lambda _: c.set_device(c.device, nms=HEAD_CHOICES[self.head_box.currentText()]))

    def show_heads(self, model: LoadedModel | None) -> None:
        """The detector's heads: the picker takes a choice only for a model with two; with one it shows that one,
        and the compare picker offers the other head only where there is one."""
        two = model is not None and len(model.heads) > 1
        self.head_box.setEnabled(two)
        if two or model is None:
            self.head_box.setCurrentText(HEAD_LABELS[self.controller.nms])
        else:
            self.head_box.setCurrentText(head_label(model.head))
        item = self.compare_box.model().item(self.compare_box.findText(COMPARE_HEADS))
        item.setEnabled(two)

    def select_model(self, weights: str) -> None:
        """Load ``weights`` as the detector (the picker, Browse…, the Models dialog, the command line)."""
        self.model_box.show_weights(weights)
        self.controller.load_model(weights, 0)

    def start_compare(self, weights: str) -> None:
        """Run ``weights`` beside the detector, on the same frames."""
        self.compare_box.show_weights(weights)
        self.controller.set_compare(weights)

    def model_chosen(self, text: str) -> None:
        weights = self.model_box.resolve(text, self, "Choose a model")
        if weights is None:  # Browse… cancelled
            self.model_box.setCurrentText(Path(self.controller.weights[0] or "").name)
            return
        self.select_model(weights)

    def compare_chosen(self, text: str) -> None:
        if text == COMPARE_OFF:
            self.controller.set_compare(None)
            self.compareClosed.emit()
            return
        if text == COMPARE_HEADS:
            self.controller.compare_heads()
            return
        weights = self.compare_box.resolve(text, self, "Second model to compare")
        if weights is None:
            self.compare_box.setCurrentText(COMPARE_OFF)
            return
        self.start_compare(weights)

    def load_failed(self, branch: int) -> None:
        """A load that failed: the detector's picker goes back to the running model; compare closes."""
        first = self.controller.detectors[0]
        if branch == 0 and first is not None:
            self.model_box.setCurrentText(first.model.model_id)
        if branch == 1:
            self.compare_box.setCurrentText(COMPARE_OFF)
            self.compareClosed.emit()

    def load_declined(self, branch: int) -> None:
        """The user would not trust the file: the picker goes back to the model of that view, if any."""
        detectors = self.controller.detectors
        previous = detectors[branch] if branch < len(detectors) else None
        box = self.model_box if branch == 0 else self.compare_box
        box.setCurrentText(previous.model.model_id if previous is not None else "" if branch == 0 else COMPARE_OFF)
        if branch > 0 and previous is None:
            self.compareClosed.emit()
