"""Zones and lines over tracked objects: who entered, who left, who lingered, who crossed which way.

An object's position is one point of its box, the zone's or line's ``anchor``: the bottom-centre by default
(where a person seen from the side stands, as in Frigate and supervision), the centre or a corner for views
from above. Object ids make one person one event; ``min_frames`` keeps one-frame flickers from counting; an
object unseen for ``memory_s`` seconds has gone, unless the monitor holds it (stationary, hidden).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import supervision as sv

from yolo_app.monitor.config import Line, Zone

MEMORY_S = 2.0  # an object unseen this long has left (the camera's track_memory)


@dataclass(frozen=True)
class Crossing:
    """One thing that happened to one tracked object: ``kind`` is enter, leave or cross."""

    kind: str  # enter, leave, loiter or cross
    name: str  # the zone's or line's
    track_id: int
    label: str
    confidence: float
    box: tuple[float, float, float, float]
    direction: str | None = None  # lines: in or out


def anchor_points(detections: sv.Detections, anchor: str = "bottom_center") -> np.ndarray:
    xyxy = detections.xyxy
    if not len(xyxy):
        return np.zeros((0, 2))
    x = {"left": xyxy[:, 0], "right": xyxy[:, 2]}
    y = {"top": xyxy[:, 1], "bottom": xyxy[:, 3]}
    if anchor == "center":
        return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2], axis=1)
    vertical, horizontal = anchor.split("_")
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2 if horizontal == "center" else x[horizontal], y[vertical]],
                    axis=1)


def _tracked(detections: sv.Detections, anchor: str):
    """(track id, label, confidence, box, anchor point) for each detection that has a track id."""
    if detections.tracker_id is None or not len(detections):
        return
    names = detections.data.get("class_name", [str(c) for c in detections.class_id])
    feet = anchor_points(detections, anchor)
    for i, tid in enumerate(detections.tracker_id):
        if tid is None or int(tid) < 0:
            continue
        yield (int(tid), str(names[i]), float(detections.confidence[i]), tuple(float(v) for v in detections.xyxy[i]),
               (float(feet[i][0]), float(feet[i][1])))


@dataclass
class _Presence:
    inside: bool = False  # counted as inside (after min_frames)
    streak: int = 0  # consecutive frames whose position disagrees with ``inside``
    last_seen: float = 0.0
    since: float = 0.0  # when it was counted inside
    loitered: bool = False  # this visit's zone_loiter was raised
    label: str = ""
    confidence: float = 0.0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


class ZoneWatcher:
    def __init__(self, zone: Zone, memory_s: float = MEMORY_S) -> None:
        self.zone = zone
        self.memory_s = memory_s
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

    def update(self, detections: sv.Detections, now: float, held: frozenset[int] = frozenset()) -> list[Crossing]:
        """One looked-at frame at ``now`` seconds; ``held``: objects out of sight that are still where they were."""
        out: list[Crossing] = []
        for tid, label, conf, box, foot in _tracked(detections, self.zone.anchor):
            p = self._tracks.setdefault(tid, _Presence())
            p.last_seen, p.label, p.confidence, p.box = now, label, conf, box
            p.streak = p.streak + 1 if self.contains(foot) != p.inside else 0
            if p.streak >= self.zone.min_frames:
                p.inside, p.streak, p.since, p.loitered = not p.inside, 0, now, False
                out.append(self._event(p, tid, "enter" if p.inside else "leave"))
        for tid, p in list(self._tracks.items()):
            if tid in held:
                p.last_seen = now
            elif now - p.last_seen > self.memory_s:  # gone without walking out: left all the same
                if p.inside:
                    out.append(self._event(p, tid, "leave"))
                del self._tracks[tid]
                continue
            loiter = self.zone.loiter_s
            if p.inside and not p.loitered and loiter is not None and now - p.since >= loiter:
                p.loitered = True
                out.append(self._event(p, tid, "loiter"))
        return out

    def inside(self, track_id: int) -> bool:
        p = self._tracks.get(track_id)
        return p is not None and p.inside

    def _event(self, p: _Presence, tid: int, kind: str) -> Crossing:
        if kind == "enter":
            self.entered += 1
        elif kind == "leave":
            self.left += 1
        return Crossing(kind, self.zone.name, tid, p.label, p.confidence, p.box)


@dataclass
class _Side:
    side: int = 0  # the settled side: +1 / -1 (0 before the first sighting)
    streak: int = 0
    last_seen: float = 0.0
    before: tuple[float, float] | None = None  # the last position on the settled side
    path: list[tuple[float, float]] = field(default_factory=list)  # positions since leaving the settled side
    seen: tuple = ()  # (label, confidence, box) when last seen


class LineCounter:
    """Counts crossings of a segment per direction. ``in`` is crossing from the left of the line (looking
    from its first point to its second) to its right; in image coordinates (y down) a line drawn left to
    right has its right side below it, so ``in`` is moving down across it."""

    def __init__(self, line: Line, memory_s: float = MEMORY_S) -> None:
        self.line = line
        self.memory_s = memory_s
        (self._ax, self._ay), (self._bx, self._by) = line.points
        self._tracks: dict[int, _Side] = {}
        self.crossed_in = 0
        self.crossed_out = 0

    def side(self, point: tuple[float, float]) -> int:
        cross = (self._bx - self._ax) * (point[1] - self._ay) - (self._by - self._ay) * (point[0] - self._ax)
        return 1 if cross > 0 else -1 if cross < 0 else 0

    def update(self, detections: sv.Detections, now: float, held: frozenset[int] = frozenset()) -> list[Crossing]:
        out: list[Crossing] = []
        for tid, label, conf, box, foot in _tracked(detections, self.line.anchor):
            s = self._tracks.setdefault(tid, _Side())
            s.last_seen, s.seen = now, (label, conf, box)
            side = self.side(foot)
            if side == 0:
                continue
            if s.side == 0 or side == s.side:
                s.side, s.streak, s.path, s.before = side, 0, [], foot
                continue
            s.streak += 1
            s.path.append(foot)
            if s.streak >= self.line.min_frames:
                out += self._crossed(tid, s, side)
        for tid, s in list(self._tracks.items()):
            if tid in held:
                s.last_seen = now
            elif now - s.last_seen > self.memory_s:
                # Gone while on the other side, before min_frames there: it crossed and left the picture (at a
                # low frame rate a person walking out may be seen once past the line). A wobble on the line
                # stays in view, and is no crossing.
                if s.streak:
                    out += self._crossed(tid, s, -s.side)
                del self._tracks[tid]
        return out

    def _crossed(self, tid: int, s: _Side, side: int) -> list[Crossing]:
        """The move from the last position before the line to the first after it, if it crossed the segment."""
        start, end = s.before or s.path[0], s.path[0]
        s.side, s.streak, s.path, s.before = side, 0, [], s.path[-1]
        if not self._within_segment(start, end):
            return []
        direction = "in" if side > 0 else "out"
        if direction == "in":
            self.crossed_in += 1
        else:
            self.crossed_out += 1
        label, conf, box = s.seen
        return [Crossing("cross", self.line.name, tid, label, conf, box, direction)]

    def _within_segment(self, p: tuple[float, float], q: tuple[float, float]) -> bool:
        """Whether the move crossed the drawn segment, not the infinite line through it (walking past
        the end of a counting line is no crossing). Tested on the line's parameter at the crossing."""
        dx, dy = self._bx - self._ax, self._by - self._ay
        length2 = dx * dx + dy * dy
        # Project the midpoint of the move (near where it crossed) onto the segment.
        mx, my = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
        t = ((mx - self._ax) * dx + (my - self._ay) * dy) / length2
        return -0.02 <= t <= 1.02
