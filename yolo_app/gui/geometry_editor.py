"""The monitoring view's video with a zone, line and mask editor on top of it.

The frame under the editor is the monitor's own rendering (boxes, the saved zones and lines with their
live counts). The editor draws the geometry being edited over it: thin outlines, vertex handles, the
polygon being drawn and a banner ("reconnecting…") when the camera is not running. Points are kept in
source-frame pixels; the widget maps them through the letterboxed (scaled to fit) display.

    Add zone (or mask): click points, double-click or Enter closes the polygon, Esc cancels.
    Add line: two clicks.
    Select: click a shape, drag its vertices (or the whole shape), Delete removes it, double-click renames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from yolo_app.gui.video_view import VideoView, fit_rect
from yolo_app.monitor.config import Camera, Line, Zone

Point = tuple[float, float]
ZONE = "zone"
LINE = "line"
MASK = "mask"
POLYGONS = (ZONE, MASK)
SELECT = "select"
ZONE_COLOUR = QColor(255, 200, 0)  # the core's overlay colours (BGR (0,200,255) / (255,120,0)) as RGB
LINE_COLOUR = QColor(0, 120, 255)
MASK_COLOUR = QColor(170, 170, 170)
COLOURS = {ZONE: ZONE_COLOUR, LINE: LINE_COLOUR, MASK: MASK_COLOUR}
SELECTED_COLOUR = QColor(255, 255, 255)
VERTEX_HIT_PX = 9  # widget pixels: how close a press must be to grab a vertex
LINE_HIT_PX = 7
DUPLICATE_PX = 4  # a press this close to the last point adds nothing (the second press of a double-click)
HINTS = {
    ZONE: "Click to add points · double-click or Enter closes the zone · Esc cancels",
    LINE: "Click the line's two ends · crossing to its right, seen from the first end, counts as 'in' · Esc cancels",
    MASK: "Click around what must never count (a flag, a TV) · double-click or Enter closes the mask · Esc cancels",
}


@dataclass
class Shape:
    """A zone, a line or a mask being edited (a mask's name is only for the table: masks are a list)."""

    kind: str  # ZONE, LINE or MASK
    name: str
    points: list[Point]
    min_frames: int = 3

    extra: dict = field(default_factory=dict)  # a zone's or line's other settings (loiter_s, anchor), kept

    def to_config(self) -> Zone | Line | tuple[Point, ...]:
        points = tuple((float(x), float(y)) for x, y in self.points)
        if self.kind == MASK:
            return points
        if self.kind == ZONE:
            return Zone(self.name, points, self.min_frames, **self.extra)
        return Line(self.name, points, self.min_frames, **self.extra)

    def key(self) -> tuple:
        return self.kind, self.name, tuple((round(x), round(y)) for x, y in self.points)


def shapes_of(cam: Camera) -> list[Shape]:
    return ([Shape(ZONE, z.name, list(z.polygon), z.min_frames, {"loiter_s": z.loiter_s, "anchor": z.anchor})
             for z in cam.zones]
            + [Shape(LINE, ln.name, list(ln.points), ln.min_frames, {"anchor": ln.anchor}) for ln in cam.lines]
            + [Shape(MASK, f"mask {i + 1}", list(m)) for i, m in enumerate(cam.masks)])


def split(shapes: list[Shape]) -> tuple[list[Zone], list[Line], list[tuple[Point, ...]]]:
    zones = [s.to_config() for s in shapes if s.kind == ZONE]
    lines = [s.to_config() for s in shapes if s.kind == LINE]
    masks = [s.to_config() for s in shapes if s.kind == MASK]
    return zones, lines, masks  # type: ignore[return-value]


def unique_name(shapes: list[Shape], stem: str) -> str:
    taken = {s.name for s in shapes}
    n = 1
    while f"{stem} {n}" in taken:
        n += 1
    return f"{stem} {n}"


def _segment_distance(p: QPointF, a: QPointF, b: QPointF) -> float:
    dx, dy = b.x() - a.x(), b.y() - a.y()
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((p.x() - a.x()) * dx + (p.y() - a.y()) * dy) / length2))
    return math.hypot(p.x() - (a.x() + t * dx), p.y() - (a.y() + t * dy))


@dataclass
class _Drag:
    shape: int
    vertex: int | None  # None: the whole shape moves
    start: Point = (0.0, 0.0)
    original: list[Point] = field(default_factory=list)


class GeometryView(VideoView):
    changed = pyqtSignal()  # the shapes were edited (not yet saved)
    selectionChanged = pyqtSignal(int)  # the selected shape's index, -1 for none
    modeChanged = pyqtSignal(str)
    renameRequested = pyqtSignal(int)

    def __init__(self, placeholder: str = "Starting the monitor…") -> None:
        super().__init__(placeholder)
        self.shapes: list[Shape] = []
        self.saved: set[tuple] = set()  # Shape.key() of what the monitor runs with: others are marked unsaved
        self.selected: int | None = None
        self.mode = SELECT
        self.draft: list[Point] = []
        self.banner: str | None = None
        self._hover: QPointF | None = None
        self._drag: _Drag | None = None
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # state ---------------------------------------------------------------------------------------------
    def set_shapes(self, shapes: list[Shape], saved: bool = True) -> None:
        self.shapes = [Shape(s.kind, s.name, list(s.points), s.min_frames) for s in shapes]
        if saved:
            self.saved = {s.key() for s in self.shapes}
        self.draft = []
        self._drag = None
        self._select(None)
        self.update()

    def set_mode(self, mode: str) -> None:
        self.draft = []
        self.mode = mode
        self.setCursor(Qt.CursorShape.ArrowCursor if mode == SELECT else Qt.CursorShape.CrossCursor)
        self.modeChanged.emit(mode)
        self.update()

    def set_banner(self, text: str | None) -> None:
        if text != self.banner:
            self.banner = text
            self.update()

    def delete_selected(self) -> None:
        if self.selected is None:
            return
        del self.shapes[self.selected]
        self._select(None)
        self.changed.emit()
        self.update()

    def rename(self, index: int, name: str) -> str | None:
        """Rename a shape; the reason when the name cannot be used, else None."""
        name = name.strip()
        if not name:
            return "A name cannot be empty."
        if any(s.name == name for i, s in enumerate(self.shapes) if i != index):
            return f"'{name}' is already used by another zone or line of this camera."
        self.shapes[index].name = name
        self.changed.emit()
        self.update()
        return None

    @property
    def dirty(self) -> bool:
        return {s.key() for s in self.shapes} != self.saved

    def _select(self, index: int | None) -> None:
        if index != self.selected:
            self.selected = index
            self.selectionChanged.emit(-1 if index is None else index)

    # coordinates ---------------------------------------------------------------------------------------
    def _target(self) -> QRectF | None:
        if self.image is None:
            return None
        return fit_rect(self.image.width(), self.image.height(), self.width(), self.height())

    def to_widget(self, x: float, y: float) -> QPointF:
        """Source-frame pixels to widget coordinates (through the letterboxed display)."""
        target = self._target()
        if target is None:
            return QPointF(x, y)
        scale = target.width() / self.image.width()
        return QPointF(target.x() + x * scale, target.y() + y * scale)

    def to_image(self, point: QPointF) -> Point:
        """Widget coordinates to source-frame pixels, kept inside the frame."""
        target = self._target()
        scale = self.image.width() / target.width()
        x = (point.x() - target.x()) * scale
        y = (point.y() - target.y()) * scale
        return (min(max(0.0, x), float(self.image.width())), min(max(0.0, y), float(self.image.height())))

    # hit tests -----------------------------------------------------------------------------------------
    def _hit(self, pos: QPointF) -> tuple[int, int | None] | None:
        order = list(range(len(self.shapes) - 1, -1, -1))  # the last drawn is on top
        if self.selected is not None:
            order.remove(self.selected)
            order.insert(0, self.selected)
        for i in order:
            for j, (x, y) in enumerate(self.shapes[i].points):
                w = self.to_widget(x, y)
                if math.hypot(w.x() - pos.x(), w.y() - pos.y()) <= VERTEX_HIT_PX:
                    return i, j
        for i in order:
            shape = self.shapes[i]
            points = [self.to_widget(x, y) for x, y in shape.points]
            if shape.kind == LINE:
                if _segment_distance(pos, points[0], points[1]) <= LINE_HIT_PX:
                    return i, None
            elif QPolygonF(points).containsPoint(pos, Qt.FillRule.OddEvenFill):
                return i, None
        return None

    # drawing shapes ------------------------------------------------------------------------------------
    def _add_point(self, pos: QPointF) -> None:
        target = self._target()
        if target is None or not target.adjusted(-2, -2, 2, 2).contains(pos):
            return
        if self.draft:
            last = self.to_widget(*self.draft[-1])
            if math.hypot(last.x() - pos.x(), last.y() - pos.y()) < DUPLICATE_PX:
                return
        self.draft.append(self.to_image(pos))
        if self.mode == LINE and len(self.draft) == 2:
            self._finish(LINE, 2)
        self.update()

    def finish_zone(self) -> bool:
        """Close the zone or mask being drawn."""
        if self.mode not in POLYGONS or len(self.draft) < 3:
            return False
        self._finish(self.mode, 3)
        return True

    def _finish(self, kind: str, min_frames: int) -> None:
        points, self.draft = self.draft, []
        self.shapes.append(Shape(kind, unique_name(self.shapes, kind), points, min_frames))
        self.set_mode(SELECT)
        self._select(len(self.shapes) - 1)
        self.changed.emit()

    # events --------------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        self.setFocus()
        if self.image is None or event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        if self.mode != SELECT:
            self._add_point(pos)
            return
        hit = self._hit(pos)
        self._select(None if hit is None else hit[0])
        if hit is not None:
            shape = self.shapes[hit[0]]
            self._drag = _Drag(hit[0], hit[1], self.to_image(pos), list(shape.points))
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        self._hover = event.position()
        drag = self._drag
        if drag is not None and self.image is not None and drag.shape < len(self.shapes):
            shape = self.shapes[drag.shape]
            x, y = self.to_image(event.position())
            if drag.vertex is not None:
                shape.points[drag.vertex] = (x, y)
            else:
                w, h = float(self.image.width()), float(self.image.height())
                xs, ys = [p[0] for p in drag.original], [p[1] for p in drag.original]
                dx = min(max(x - drag.start[0], -min(xs)), w - max(xs))  # the whole shape stays in the frame
                dy = min(max(y - drag.start[1], -min(ys)), h - max(ys))
                shape.points = [(px + dx, py + dy) for px, py in drag.original]
            self.changed.emit()
        if drag is not None or self.draft:
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        self._drag = None

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if self.image is None:
            return
        if self.mode in POLYGONS:
            self._add_point(event.position())  # nothing when the press already added it
            self.finish_zone()
        elif self.mode == LINE:
            self._add_point(event.position())
        else:
            hit = self._hit(event.position())
            if hit is not None:
                self.renameRequested.emit(hit[0])

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self._hover = None
        self.update()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.mode in POLYGONS:
            self.finish_zone()
        elif key == Qt.Key.Key_Escape and self.mode != SELECT:
            self.set_mode(SELECT)
        elif key == Qt.Key.Key_Escape and self.selected is not None:
            self._select(None)
            self.update()
        else:
            super().keyPressEvent(event)

    # painting ------------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.image is not None:
            for i, shape in enumerate(self.shapes):
                self._paint_shape(painter, shape, i == self.selected)
            self._paint_draft(painter)
        if self.banner:
            self._paint_banner(painter, self.banner)
        if self.mode in HINTS and self.image is not None:
            self._paint_hint(painter, HINTS[self.mode])

    def _paint_shape(self, painter: QPainter, shape: Shape, selected: bool) -> None:
        colour = SELECTED_COLOUR if selected else COLOURS[shape.kind]
        points = [self.to_widget(x, y) for x, y in shape.points]
        pen = QPen(colour, 2.5 if selected else 1.2)
        if shape.key() not in self.saved:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if shape.kind == MASK:
            painter.setBrush(QColor(0, 0, 0, 110))
            painter.drawPolygon(QPolygonF(points))
        elif shape.kind == ZONE:
            painter.drawPolygon(QPolygonF(points))
        else:
            painter.drawLine(points[0], points[1])
        size = 8.0 if selected else 5.0
        painter.setPen(QPen(QColor(0, 0, 0), 1))
        painter.setBrush(colour)
        for p in points:
            painter.drawRect(QRectF(p.x() - size / 2, p.y() - size / 2, size, size))
        if shape.key() not in self.saved:
            first = min(points, key=lambda p: (p.y(), p.x()))
            self._paint_tag(painter, QPointF(first.x(), first.y() - 6), f"{shape.name} (unsaved)", colour)

    def _paint_draft(self, painter: QPainter) -> None:
        if not self.draft:
            return
        colour = COLOURS[self.mode]
        points = [self.to_widget(x, y) for x, y in self.draft]
        if self._hover is not None:
            points.append(self._hover)
        painter.setPen(QPen(colour, 2, Qt.PenStyle.DashLine))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPolyline(QPolygonF(points))
        painter.setBrush(colour)
        for p in points[:len(self.draft)]:
            painter.drawEllipse(p, 4, 4)

    def _paint_tag(self, painter: QPainter, at: QPointF, text: str, colour: QColor) -> None:
        metrics = painter.fontMetrics()
        rect = QRectF(at.x(), at.y() - metrics.height() - 2, metrics.horizontalAdvance(text) + 8, metrics.height() + 2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRect(rect)
        painter.setPen(QColor(0, 0, 0))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_banner(self, painter: QPainter, text: str) -> None:
        font = QFont(painter.font())
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 32, metrics.height() + 16
        rect = QRectF((self.width() - w) / 2, max(12.0, self.height() * 0.12), w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(138, 109, 0, 235))
        painter.drawRoundedRect(rect, 8, 8)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.setFont(QFont())

    def _paint_hint(self, painter: QPainter, text: str) -> None:
        metrics = painter.fontMetrics()
        w, h = metrics.horizontalAdvance(text) + 20, metrics.height() + 10
        rect = QRectF((self.width() - w) / 2, self.height() - h - 10, w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 190))
        painter.drawRoundedRect(rect, 6, 6)
        painter.setPen(QColor(235, 235, 235))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

