"""Zones and lines over tracked detections: who entered, who left, who crossed which way.

An object's position is the bottom-centre of its box (where it stands), as in Frigate and supervision.
Tracking ids make one person one event; ``min_frames`` keeps one-frame flickers from counting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import supervision as sv

from yolo_app.monitor.config import Line, Zone

LOST_AFTER_FRAMES = 30  # a track unseen this long has left (ByteTrack keeps lost tracks ~30 frames too)


@dataclass(frozen=True)
class Crossing:
    """One thing that happened to one tracked object: ``kind`` is enter, leave or cross."""

    kind: str
    name: str  # the zone's or line's
    track_id: int
    label: str
    confidence: float
    box: tuple[float, float, float, float]
    direction: str | None = None  # lines: in or out


def foot_points(detections: sv.Detections) -> np.ndarray:
    xyxy = detections.xyxy
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1) if len(xyxy) else np.zeros((0, 2))


def _tracked(detections: sv.Detections):
    """(track id, label, confidence, box, foot point) for each detection that has a track id."""
    if detections.tracker_id is None or not len(detections):
        return
    names = detections.data.get("class_name", [str(c) for c in detections.class_id])
    feet = foot_points(detections)
    for i, tid in enumerate(detections.tracker_id):
        if tid is None or int(tid) < 0:
            continue
        yield (int(tid), str(names[i]), float(detections.confidence[i]), tuple(float(v) for v in detections.xyxy[i]),
               (float(feet[i][0]), float(feet[i][1])))


@dataclass
class _Presence:
    inside: bool = False  # counted as inside (after min_frames)
    streak: int = 0  # consecutive frames whose position disagrees with ``inside``
    last_seen: int = 0
    label: str = ""
    confidence: float = 0.0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


class ZoneWatcher:
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.contour = np.array(zone.polygon, dtype=np.float32).reshape(-1, 1, 2)
        self._tracks: dict[int, _Presence] = {}
        self.entered = 0
        self.left = 0

    @property
    def occupancy(self) -> int:
        return sum(p.inside for p in self._tracks.values())

    def occupancy_by_label(self) -> dict[str, int]:
        """Objects inside now, per class."""
        inside: dict[str, int] = {}
        for p in self._tracks.values():
            if p.inside:
                inside[p.label] = inside.get(p.label, 0) + 1
        return inside

    def contains(self, point: tuple[float, float]) -> bool:
        return cv2.pointPolygonTest(self.contour, point, False) >= 0

    def update(self, detections: sv.Detections, frame_index: int) -> list[Crossing]:
        out: list[Crossing] = []
        for tid, label, conf, box, foot in _tracked(detections):
            p = self._tracks.setdefault(tid, _Presence())
            p.last_seen, p.label, p.confidence, p.box = frame_index, label, conf, box
            p.streak = p.streak + 1 if self.contains(foot) != p.inside else 0
            if p.streak >= self.zone.min_frames:
                p.inside, p.streak = not p.inside, 0
                out.append(self._event(p, tid, "enter" if p.inside else "leave"))
        for tid, p in list(self._tracks.items()):
            if frame_index - p.last_seen > LOST_AFTER_FRAMES:  # gone without walking out: left all the same
                if p.inside:
                    out.append(self._event(p, tid, "leave"))
                del self._tracks[tid]
        return out

    def _event(self, p: _Presence, tid: int, kind: str) -> Crossing:
        if kind == "enter":
            self.entered += 1
        else:
            self.left += 1
        return Crossing(kind, self.zone.name, tid, p.label, p.confidence, p.box)


@dataclass
class _Side:
    side: int = 0  # the settled side: +1 / -1 (0 before the first sighting)
    streak: int = 0
    last_seen: int = 0
    path: list[tuple[float, float]] = field(default_factory=list)  # positions since leaving the settled side


class LineCounter:
    """Counts crossings of a segment per direction. ``in`` is crossing from the left of the line (looking
    from its first point to its second) to its right; in image coordinates (y down) a line drawn left to
    right has its right side below it, so ``in`` is moving down across it."""

    def __init__(self, line: Line) -> None:
        self.line = line
        (self._ax, self._ay), (self._bx, self._by) = line.points
        self._tracks: dict[int, _Side] = {}
        self.crossed_in = 0
        self.crossed_out = 0

    def side(self, point: tuple[float, float]) -> int:
        cross = (self._bx - self._ax) * (point[1] - self._ay) - (self._by - self._ay) * (point[0] - self._ax)
        return 1 if cross > 0 else -1 if cross < 0 else 0

    def update(self, detections: sv.Detections, frame_index: int) -> list[Crossing]:
        out: list[Crossing] = []
        for tid, label, conf, box, foot in _tracked(detections):
            s = self._tracks.setdefault(tid, _Side())
            s.last_seen = frame_index
            side = self.side(foot)
            if side == 0:
                continue
            if s.side == 0:
                s.side = side
                continue
            if side == s.side:
                s.streak, s.path = 0, []
                continue
            s.streak += 1
            s.path.append(foot)
            if s.streak >= self.line.min_frames:
                start = s.path[0]
                s.side, s.streak, s.path = side, 0, []
                if self._within_segment(start, foot):
                    direction = "in" if side > 0 else "out"
                    if direction == "in":
                        self.crossed_in += 1
                    else:
                        self.crossed_out += 1
                    out.append(Crossing("cross", self.line.name, tid, label, conf, box, direction))
        for tid, s in list(self._tracks.items()):
            if frame_index - s.last_seen > LOST_AFTER_FRAMES:
                del self._tracks[tid]
        return out

    def _within_segment(self, p: tuple[float, float], q: tuple[float, float]) -> bool:
        """Whether the move crossed the drawn segment, not the infinite line through it (walking past
        the end of a counting line is no crossing). Tested on the line's parameter at the crossing."""
        dx, dy = self._bx - self._ax, self._by - self._ay
        length2 = dx * dx + dy * dy
        # Project the midpoint of the move (near where it crossed) onto the segment.
        mx, my = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
        t = ((mx - self._ax) * dx + (my - self._ay) * dy) / length2
        return -0.02 <= t <= 1.02
