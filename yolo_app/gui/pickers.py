"""Choosers shared by the main window and the annotate dialog: the model picker, the head's choices and the media
file filter."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QComboBox, QFileDialog, QWidget

from yolo_app.engine.heads import HEAD_END2END
from yolo_app.engine.models import find_weights
from yolo_app.engine.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

BROWSE = "Browse…"
MEDIA_FILTER = ("Media (" + " ".join(f"*{ext}" for ext in sorted(VIDEO_EXTENSIONS | IMAGE_EXTENSIONS))
                + ");;All files (*)")
# Exported models too: an OpenVINO model folder is picked by its .xml (its .bin and metadata.yaml lie beside it).
MODEL_FILTER = ("Models (*.pt *.onnx *.engine *.xml);;PyTorch checkpoints (*.pt);;ONNX (*.onnx);;"
                "OpenVINO model: its .xml (*.xml);;TensorRT engines (*.engine);;All files (*)")

# The head picker's labels -> settings.NMS_CHOICES (Ultralytics' nms argument).
HEAD_CHOICES = {"auto": "auto", "NMS": "true", "NMS-free": "false"}
HEAD_LABELS = {value: label for label, value in HEAD_CHOICES.items()}


def head_label(head: str) -> str:
    """The picker's word for the head that runs (engine/heads.py): "NMS" or "NMS-free"."""
    return "NMS-free" if head == HEAD_END2END else "NMS"


HEAD_TIP = ("Which head a YOLOv10 or YOLO26 model runs (Ultralytics' nms argument). auto: what Ultralytics' predict "
            "runs, the one-to-many head with NMS for a checkpoint with both; NMS-free: the one-to-one head.")


class ModelPicker(QComboBox):
    """``first`` entries, every model on the weights search path, then Browse…"""

    def __init__(self, first: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._paths: dict[str, str] = {}  # entry -> path, for models browsed to
        self.addItems([*first, *(p.name for p in find_weights()), BROWSE])

    def show_weights(self, weights: str) -> None:
        """Make ``weights`` the current entry (added before Browse… when new)."""
        name = Path(weights).name
        self._paths[name] = weights
        if self.findText(name) < 0:
            self.insertItem(self.count() - 1, name)
        self.setCurrentText(name)

    def weights_for(self, name: str) -> str:
        """An entry back to a loadable path: one browsed to earlier, or one on the search path."""
        if name in self._paths:
            return self._paths[name]
        match = [p for p in find_weights() if p.name == name]
        return str(match[0]) if match else name

    def resolve(self, name: str, parent: QWidget, title: str) -> str | None:
        """The weights for an entry the user picked; Browse… asks for a file (None: the user cancelled)."""
        if name != BROWSE:
            return self.weights_for(name)
        path, _ = QFileDialog.getOpenFileName(parent, title, "", MODEL_FILTER)
        return path or None
