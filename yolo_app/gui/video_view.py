"""The video widgets: a view that paints the latest annotated frame, scaled to fit with its aspect ratio
kept, and a pane that puts a caption over it."""

from __future__ import annotations

from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

HIGHLIGHT = QColor(255, 255, 255)


def fit_rect(image_w: int, image_h: int, area_w: float, area_h: float) -> QRectF:
    """The largest rectangle of the image's aspect ratio centred in the area."""
    scale = min(area_w / image_w, area_h / image_h)
    w, h = image_w * scale, image_h * scale
    return QRectF((area_w - w) / 2, (area_h - h) / 2, w, h)


class VideoView(QWidget):
    clicked = pyqtSignal(float, float)  # a click, in the shown image's pixels

    def __init__(self, placeholder: str = "Open a camera, a file, a stream or the demo") -> None:
        super().__init__()
        self.placeholder = placeholder
        self.image: QImage | None = None
        self.highlight: tuple[float, float, float, float] | None = None  # the selected box, image pixels
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def show_image(self, image: QImage) -> None:
        self.image = image
        self.update()

    def set_highlight(self, box: tuple[float, float, float, float] | None) -> None:
        self.highlight = box
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self.image = None
        self.highlight = None
        if placeholder is not None:
            self.placeholder = placeholder
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(18, 18, 20))
        if self.image is None:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        # Logical coordinates: Qt maps them to device pixels, so hi-DPI screens get full resolution.
        target = fit_rect(self.image.width(), self.image.height(), self.width(), self.height())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, self.image)
        if self.highlight is not None:
            scale = target.width() / self.image.width()
            x1, y1, x2, y2 = self.highlight
            painter.setPen(QPen(HIGHLIGHT, 3, Qt.PenStyle.DashLine))
            painter.drawRect(QRectF(target.x() + x1 * scale, target.y() + y1 * scale,
                                    (x2 - x1) * scale, (y2 - y1) * scale))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if self.image is None:
            return
        target = fit_rect(self.image.width(), self.image.height(), self.width(), self.height())
        point = event.position()
        if target.contains(point):
            scale = self.image.width() / target.width()
            self.clicked.emit((point.x() - target.x()) * scale, (point.y() - target.y()) * scale)


class VideoPane(QWidget):
    """One model's view with a caption: model, FPS, latency, detections."""

    def __init__(self) -> None:
        super().__init__()
        self.view = VideoView()
        self.caption = QLabel("")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)
