"""The objects a camera has seen, over the tracker's ids: what the monitor counts, alerts on and reports.

The tracker's ids are frame-to-frame identities; an object here is what a person would call one thing:
- **It counts once it is real**: the median of its last ``SCORE_HISTORY`` scores (0 for a frame it was missed in,
  as Frigate scores them) has reached its class's ``threshold`` once. Before that it raises nothing.
- **Its class is its history's**: the class with the highest summed score so far, so a car the detector calls
  a bus in a few frames stays one car, in events, counts and class filters.
- **It can be stationary**: a box whose centre has stayed within ``STILL_SHIFT`` of its size of where it
  stopped for ``stationary_after`` seconds. A stationary object moves off once ``MOVED_FRAMES`` frames in a row
  put it further (one jittery box, a hand in front, does not). A stationary object that the tracker loses (a
  van passes in front of a parked car) is kept, and a new track that appears where it stood is taken to be it:
  the same id, nothing raised again. Moving off again is reported.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np
import supervision as sv

from yolo_app.engine.tracking import UNTRACKED
from yolo_app.engine.types import Frame, Result
from yolo_app.monitor.filters import ObjectFilters, held_back, mask_contours

SCORE_HISTORY = 10
STILL_SHIFT = 0.1  # a centre within this share of the box's diagonal of where the object stopped: it has not moved
STILL_PX = 4.0  # nor within this many pixels (small boxes jitter by whole pixels)
MOVED_FRAMES = 3
REFIND_IOU = 0.5  # a new track this close to a lost stationary object is that object
STATIONARY_MEMORY_S = 24 * 3600.0  # a parked car hidden for hours is still the same car
MAX_KEPT = 200  # stationary objects kept out of sight, per camera (the oldest go first)

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _shifted(box: Box, still: Box) -> bool:
    dx = (box[0] + box[2] - still[0] - still[2]) / 2
    dy = (box[1] + box[3] - still[1] - still[3]) / 2
    diagonal = ((still[2] - still[0]) ** 2 + (still[3] - still[1]) ** 2) ** 0.5
    return (dx * dx + dy * dy) ** 0.5 > max(STILL_PX, STILL_SHIFT * diagonal)


@dataclass
class TrackedObject:
    id: int
    first_seen: float
    last_seen: float
    box: Box
    scores: deque = field(default_factory=lambda: deque(maxlen=SCORE_HISTORY))
    class_scores: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0
    confirmed: bool = False
    still_box: Box | None = None  # where it stopped moving
    still_since: float | None = None
    stationary: bool = False
    away: int = 0  # frames in a row a stationary object was seen away from where it stood
    zones: set[str] = field(default_factory=set)  # the zones it has entered (an alert's required_zones)

    @property
    def label(self) -> str:
        return max(self.class_scores.items(), key=lambda item: item[1])[0]


@dataclass(frozen=True)
class BookUpdate:
    counted: sv.Detections  # the confirmed objects in this frame: tracker_id is the object's id, class_name its class
    rows: tuple[int, ...]  # the rows of the given detections that ``counted`` holds, in its order
    now: float  # the camera's time of the frame (seconds)
    held: frozenset[int]  # confirmed objects out of sight that are still there (stationary, hidden)
    confirmed: tuple[int, ...]  # objects that count from this frame on
    stopped: tuple[int, ...]  # objects that became stationary
    moved: tuple[int, ...]  # stationary objects that moved off


class ObjectBook:
    def __init__(self, filters: ObjectFilters = ObjectFilters(), stationary_after_s: float | None = None,
                 memory_s: float = 2.0) -> None:
        self.filters = filters
        self.stationary_after_s = stationary_after_s
        self.memory_s = memory_s  # a moving object unseen this long is gone
        self.objects: dict[int, TrackedObject] = {}
        self._by_track: dict[int, int] = {}  # tracker id -> object id
        self._track_seen: dict[int, float] = {}
        self._ids = itertools.count(1)

    def get(self, object_id: int) -> TrackedObject | None:
        return self.objects.get(object_id)

    def counts_track(self, tid: int) -> bool:
        """Whether the tracker's id is an object that counts."""
        oid = self._by_track.get(tid)
        return oid is not None and oid in self.objects and self.objects[oid].confirmed

    def new_tracker(self) -> None:
        """The tracker starts again (a camera reopened): its ids mean other things now. Objects in motion are
        gone; stationary ones stay, to be found where they stood."""
        self._by_track.clear()
        self._track_seen.clear()
        for oid in [o.id for o in self.objects.values() if not o.stationary]:
            del self.objects[oid]

    def update(self, detections: sv.Detections, now: float) -> BookUpdate:
        """One looked-at frame's tracked detections (already through the camera's filters), at ``now`` seconds."""
        names = detections.data.get("class_name", [str(c) for c in detections.class_id]) if len(detections) else []
        seen: dict[int, int] = {}  # object id -> row
        confirmed, stopped, moved = [], [], []
        tids = detections.tracker_id if detections.tracker_id is not None else [-1] * len(detections)
        for row, tid in enumerate(tids):
            if tid is None or int(tid) < 0:
                continue
            box: Box = tuple(float(v) for v in detections.xyxy[row])
            obj = self._object_for(int(tid), box, now)
            if obj.id in seen:  # two boxes on one object (a re-found track beside its own): the first counts
                continue
            seen[obj.id] = row
            score = float(detections.confidence[row])
            obj.last_seen, obj.box, obj.confidence = now, box, score
            obj.scores.append(score)
            label = str(names[row])
            obj.class_scores[label] = obj.class_scores.get(label, 0.0) + score
            if not obj.confirmed and statistics.median(obj.scores) >= self.filters.of(obj.label).threshold:
                obj.confirmed = True
                confirmed.append(obj.id)
            change = self._stillness(obj, now)
            if change == "stopped" and obj.confirmed:
                stopped.append(obj.id)
            elif change == "moved" and obj.confirmed:
                moved.append(obj.id)
        for obj in self.objects.values():
            if obj.id not in seen and not obj.stationary:
                obj.scores.append(0.0)  # looked at, not found: Frigate's history counts the miss
        held = self._forget(now, seen)
        ids = [oid for oid in seen if self.objects[oid].confirmed]
        rows = [seen[oid] for oid in ids]
        counted = detections[np.array(rows, dtype=int)]
        counted.tracker_id = np.array(ids, dtype=int)
        counted.data["class_name"] = np.array([self.objects[i].label for i in ids], dtype=object)
        counted.data["stationary"] = np.array([self.objects[i].stationary for i in ids], dtype=bool)
        return BookUpdate(counted, tuple(rows), now, held, tuple(confirmed), tuple(stopped), tuple(moved))

    def _object_for(self, tid: int, box: Box, now: float) -> TrackedObject:
        self._track_seen[tid] = now
        known = self._by_track.get(tid)
        if known is not None and known in self.objects:
            return self.objects[known]
        # A new track: the stationary object that stood here, if one is out of sight, else a new object.
        hidden = [o for o in self.objects.values()
                  if o.stationary and o.last_seen < now and iou(o.box, box) >= REFIND_IOU]
        obj = max(hidden, key=lambda o: iou(o.box, box)) if hidden else None
        if obj is None:
            obj = TrackedObject(next(self._ids), now, now, box)
            self.objects[obj.id] = obj
        self._by_track[tid] = obj.id
        return obj

    def _stillness(self, obj: TrackedObject, now: float) -> str | None:
        if self.stationary_after_s is None:
            return None
        if obj.still_box is not None and not _shifted(obj.box, obj.still_box):
            obj.away = 0
            if not obj.stationary and now - obj.still_since >= self.stationary_after_s:
                obj.stationary = True
                return "stopped"
            return None
        if obj.stationary:
            obj.away += 1
            if obj.away < MOVED_FRAMES:
                return None
            obj.stationary, obj.away = False, 0
            obj.still_box, obj.still_since = obj.box, now
            return "moved"
        obj.still_box, obj.still_since = obj.box, now  # moving: stillness counts from here
        return None

    def _forget(self, now: float, seen: dict[int, int]) -> frozenset[int]:
        """Drops what is gone; returns the confirmed stationary objects out of sight, still held."""
        held = set()
        for oid, obj in list(self.objects.items()):
            away = now - obj.last_seen
            if oid in seen:
                continue
            if obj.stationary and away <= STATIONARY_MEMORY_S:
                if obj.confirmed:
                    held.add(oid)
            elif away > self.memory_s:
                del self.objects[oid]
        kept = sorted((o for o in self.objects.values() if o.stationary and o.id not in seen),
                      key=lambda o: o.last_seen)
        for obj in kept[:max(0, len(kept) - MAX_KEPT)]:
            del self.objects[obj.id]
            held.discard(obj.id)
        for tid, at in list(self._track_seen.items()):
            if now - at > self.memory_s or self._by_track.get(tid) not in self.objects:
                del self._track_seen[tid]
                self._by_track.pop(tid, None)
        return frozenset(held)


class CameraClock:
    """A camera's time in seconds for memories and durations: its frames' own times (a file's position, a live
    stream's clock), kept moving forward when a file loops or a stream starts again."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._last: float | None = None

    def __call__(self, frame: Frame) -> float:
        t = frame.pts_s if frame.pts_s is not None else frame.captured_at
        if self._last is not None and t + self._offset <= self._last:
            self._offset = self._last + 1e-3 - t
        self._last = t + self._offset
        return self._last


class ObjectStage:
    """The monitor's step after tracking, on the camera's inference thread: filters and masks, then the object
    book. Every sink gets the frame's boxes with ``tracker_id`` the object's id, ``class_name`` its class from
    history, ``stationary``, and ``held_back`` ("" where it counts, else the filter that held it: min_area …
    mask, or threshold while its scores have not reached it). The book's news for each frame waits for the
    monitor's sink (``news``)."""

    NEWS_KEPT = 256  # frames whose news no sink took (the pipeline stopped mid-way) are not kept for ever

    def __init__(self, filters: ObjectFilters, masks, stationary_after_s: float | None, memory_s: float,
                 conf: float = 0.0) -> None:
        self.filters = filters
        self.conf = conf  # a box below it only extends an object that already counts (the detector reports lower)
        self.masks = mask_contours(masks)
        self.book = ObjectBook(filters, stationary_after_s, memory_s)
        self.clock = CameraClock()
        self._news: OrderedDict[int, BookUpdate] = OrderedDict()
        self._lock = threading.Lock()

    def set_masks(self, masks) -> None:
        self.masks = mask_contours(masks)  # one assignment: the inference thread sees the old or the new tuple

    def refine(self, result: Result) -> Result:
        boxes, frame = result.boxes, result.frame
        n = len(boxes)
        reasons = held_back(result.detections, self.filters, self.masks, (frame.width, frame.height), self.conf)
        with self._lock:
            for i, tid in enumerate(boxes.tracker_id if boxes.tracker_id is not None else ()):
                if reasons[i] == "conf" and self.book.counts_track(int(tid)):
                    reasons[i] = None  # a weak box of an object that counts: still that object
            kept = np.array([i for i, r in enumerate(reasons) if r is None], dtype=int)
            update = self.book.update(result.detections[kept], self.clock(frame))
            self._news[id(result.frame)] = update
            while len(self._news) > self.NEWS_KEPT:
                self._news.popitem(last=False)
        names = np.array(boxes.data.get("class_name", [""] * n), dtype=object)
        tracker = np.full(n, UNTRACKED, dtype=int)
        stationary = np.zeros(n, dtype=bool)
        # Kept rows are held by the threshold until their object counts, or are not on a track yet (ByteTrack
        # gives an id from a track's second frame).
        ids = boxes.tracker_id if boxes.tracker_id is not None else np.full(n, UNTRACKED)
        why = np.array([r or ("threshold" if ids[i] >= 0 else "new track") for i, r in enumerate(reasons)],
                       dtype=object)
        for row, oid in zip(kept[list(update.rows)], update.counted.tracker_id):
            obj = self.book.objects[int(oid)]
            tracker[row], names[row], stationary[row], why[row] = int(oid), obj.label, obj.stationary, ""
        refined = dataclasses.replace(boxes, tracker_id=tracker, data={
            **boxes.data, "class_name": names, "stationary": stationary, "held_back": why})
        return dataclasses.replace(result, boxes=refined)

    def news(self, result: Result) -> BookUpdate | None:
        """The book's news of this result's frame (None for a frame the detector did not look at)."""
        with self._lock:
            return self._news.pop(id(result.frame), None)


def counted(detections: sv.Detections) -> sv.Detections:
    """The detections that count (``held_back`` empty); all of them before the object stage ran."""
    why = detections.data.get("held_back")
    return detections if why is None else detections[why == ""]
