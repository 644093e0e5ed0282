"""The main window's status bar: the live figures of the first view, a REC clock and a model-loading bar."""

from __future__ import annotations

from PyQt6.QtWidgets import QLabel, QProgressBar, QStatusBar

from yolo_app.engine.models import LoadedModel
from yolo_app.engine.stats import PipelineStats
from yolo_app.gui.playback_bar import clock

FIGURES = ("capture", "inference", "display", "latency", "dropped", "device", "model")


class StatusBar(QStatusBar):
    """Transient messages on the left; on the right the REC clock, the busy bar, then ``labels``:
    capture / inference / display FPS, latency, dropped frames, device · runtime and model."""

    def __init__(self) -> None:
        super().__init__()
        self.rec_label = QLabel("")
        self.rec_label.setStyleSheet("color:#e0101a;font-weight:bold")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: a model is loading
        self.busy.setMaximumWidth(120)
        self.busy.hide()
        self.labels = {key: QLabel() for key in FIGURES}
        self.addPermanentWidget(self.rec_label)
        self.addPermanentWidget(self.busy)
        for label in self.labels.values():
            self.addPermanentWidget(label)

    def show_figures(self, stats: PipelineStats | None, display_fps: float, latency_ms: float,
                     model: LoadedModel | None) -> None:
        """``stats``/``model`` None (nothing running or loaded yet): their labels keep what they said."""
        labels = self.labels
        if stats is not None:
            labels["capture"].setText(f"capture {stats.capture_fps:.1f} fps")
            labels["inference"].setText(f"inference {stats.inference_fps:.1f} fps")
            labels["dropped"].setText(f"dropped {stats.dropped}")
        # Display rate and latency are the window's own: what reached the screen, capture to paint.
        labels["display"].setText(f"display {display_fps:.1f} fps")
        labels["latency"].setText(f"latency {latency_ms:.0f} ms")
        if model is not None:
            labels["device"].setText(f"{model.device} · {model.runtime}")
            labels["model"].setText(model.model_id)

    def show_recording(self, seconds: float | None) -> None:
        """How long the recording has run; None: not recording."""
        self.rec_label.setText("" if seconds is None else f"● REC {clock(seconds)}")
