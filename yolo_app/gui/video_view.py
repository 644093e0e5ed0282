"""A widget that paints the latest annotated frame, scaled to fit with its aspect ratio kept."""

from __future__ import annotations

from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget


def fit_rect(image_w: int, image_h: int, area_w: float, area_h: float) -> QRectF:
    """The largest rectangle of the image's aspect ratio centred in the area."""
    scale = min(area_w / image_w, area_h / image_h)
    w, h = image_w * scale, image_h * scale
    return QRectF((area_w - w) / 2, (area_h - h) / 2, w, h)


class VideoView(QWidget):
    def __init__(self, placeholder: str = "Open a camera, a file, a stream or the demo") -> None:
        super().__init__()
        self.placeholder = placeholder
        self.image: QImage | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def show_image(self, image: QImage) -> None:
        self.image = image
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self.image = None
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
