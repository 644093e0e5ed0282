"""Multi-object tracking: ByteTrack (Roboflow's `trackers`, the successor of supervision's ByteTrack)
as a stage right after inference. One tracker per source, so ids start again for every file."""

from __future__ import annotations

import pickle
from fractions import Fraction

import numpy as np

from yolo_app.engine.types import Boxes

UNTRACKED = -1  # ByteTrack's id for a box that matched no track (yet)


class Tracker:
    """Adds ``tracker_id`` to every detection, keeping all boxes and their order. (``trackers`` and
    supervision are imported by a run that tracks, not by every run that imports this module.)"""

    def __init__(self, fps: Fraction | float | None, snapshot_every: int | None = None, memory_s: float = 1.0) -> None:
        from trackers import ByteTrackTracker

        # ByteTrack's buffer is in frames at 30 fps; with each frame's time given (update's pts_s) it is kept
        # as that many thirtieths of a second, so memory_s holds at 5 fps, 25 fps or with frames skipped alike.
        self._tracker = ByteTrackTracker(frame_rate=float(fps) if fps else 30.0,
                                         lost_track_buffer=max(1, round(memory_s * 30)))
        # Resumable runs: the state after every Nth frame, keyed by the number of frames done, taken
        # here in frame order so a checkpoint written later (by the sinks) can pick the matching one.
        self.snapshot_every = snapshot_every
        self.snapshots: dict[int, bytes] = {}
        self._period = 1.0 / float(fps) if fps else 1 / 30
        self._offset = 0.0  # added to timestamps after a file loops, so the tracker's clock never runs back
        self._last: float | None = None

    def state(self) -> bytes:
        return pickle.dumps(self._tracker)

    def restore(self, state: bytes) -> None:
        """Continue from ``state()`` of an earlier run: same tracks, same next id."""
        self._tracker = pickle.loads(state)  # noqa: S301 - our own checkpoint in the user's output folder

    def update(self, boxes: Boxes, pts_s: float | None, index: int | None = None) -> Boxes:
        if pts_s is not None:
            if self._last is not None and pts_s + self._offset <= self._last:  # looped or sought back
                self._offset = self._last + self._period - pts_s
            pts_s = self._last = pts_s + self._offset
        tracked = self._update(boxes, pts_s)
        if self.snapshot_every and index is not None and (index + 1) % self.snapshot_every == 0:
            self.snapshots[index + 1] = self.state()
        return tracked

    def _update(self, boxes: Boxes, pts_s: float | None) -> Boxes:
        import supervision as sv

        tagged = sv.Detections(xyxy=boxes.xyxy, confidence=boxes.confidence, class_id=boxes.class_id,
                               data={**boxes.data, "_order": np.arange(len(boxes))})
        # With the frame's own time the Kalman step follows the real clock: VFR files and dropped
        # live frames keep their tracks.
        tracked = self._tracker.update(tagged, timestamp=pts_s)
        if "_order" not in tracked.data:  # nothing came back (no boxes, no tracks): all untracked
            return Boxes(boxes.xyxy, boxes.confidence, boxes.class_id, np.full(len(boxes), UNTRACKED, dtype=int),
                         dict(boxes.data))
        order = np.argsort(tracked.data["_order"], kind="stable")
        tracked = tracked[order]
        del tracked.data["_order"]
        ids = np.asarray(tracked.tracker_id, dtype=int)
        tracked.tracker_id = np.where(ids >= 0, ids + 1, UNTRACKED)  # ids from 1, as MOT and CVAT count
        return Boxes.of(tracked)


def track_id(value: int | np.integer | None) -> int | None:
    """A detection's id for output: None for boxes not (yet) on a track."""
    return None if value is None or int(value) == UNTRACKED else int(value)
