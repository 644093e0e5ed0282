"""Evidence for events: a JPEG snapshot with boxes, and an MP4 clip from ``pre`` seconds before to
``post`` seconds after, cut from an in-memory ring of recent frames.

The ring holds JPEG bytes (~50 KB a frame instead of ~1 MB raw), so 5 s of 1080p30 costs ~8 MB.
Clips are encoded on their own thread: the monitor's sink only hands frames over. Files appear under
their final name only when complete (``.partial`` first), and their rows get the path when written.
Paths in the database are relative to the storage folder, so the folder can be moved.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from yolo_app.engine.sinks import partial_path
from yolo_app.engine.video_file import EVIDENCE, PTS, Mp4Writer
from yolo_app.monitor.events import EventStore

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
CLIP_QUEUE = 16  # finished clips waiting for the encoder; more means the disk cannot keep up
CLIP_RATE = Fraction(30)  # nominal: each frame is shown at its own time


@dataclass
class _PendingClip:
    event_id: int
    relpath: str
    until: float
    frames: list[tuple[float, bytes]] = field(default_factory=list)


def evidence_relpath(kind: str, camera: str, event_id: int, event_type: str, suffix: str) -> str:
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    return f"{kind}/{camera}/{day}/{event_id}-{event_type}{suffix}"


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(path)
    part.write_bytes(data)
    os.replace(part, path)


class EvidenceRecorder:
    """One per camera. ``add_frame`` is called for every frame the monitor sees, in order."""

    def __init__(self, camera: str, storage: Path, store: EventStore, pre_s: float) -> None:
        self.camera = camera
        self.storage = storage
        self.store = store
        self.pre_s = pre_s  # the longest pre-roll any alert asks for; 0: no ring kept
        self._ring: deque[tuple[float, bytes]] = deque()
        self._pending: list[_PendingClip] = []
        self._jobs: queue.Queue[_PendingClip | None] = queue.Queue(CLIP_QUEUE)
        self._writer = threading.Thread(target=self._write_clips, name=f"clips:{camera}", daemon=True)
        self._writer.start()
        self.clips_written = 0
        self.clip_errors = 0

    # called from the monitor sink's thread -----------------------------------------------------------
    def add_frame(self, t: float, image: np.ndarray) -> None:
        if not self.pre_s and not self._pending:
            return
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return
        item = (t, jpeg.tobytes())
        self._ring.append(item)
        while self._ring and self._ring[0][0] < t - self.pre_s:
            self._ring.popleft()
        for clip in list(self._pending):
            clip.frames.append(item)
            if t >= clip.until:
                self._pending.remove(clip)
                self._jobs.put(clip)

    def snapshot(self, event_id: int, event_type: str, image: np.ndarray) -> str | None:
        relpath = evidence_relpath("snapshots", self.camera, event_id, event_type, ".jpg")
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        try:
            if not ok:
                raise OSError("JPEG encoding failed")
            write_atomic(self.storage / relpath, jpeg.tobytes())
        except OSError as exc:
            log.warning("%s: snapshot for event %d not written: %s", self.camera, event_id, exc)
            return None
        self.store.update(event_id, snapshot_path=relpath)
        return relpath

    def start_clip(self, event_id: int, event_type: str, t: float, pre: float, post: float) -> None:
        relpath = evidence_relpath("clips", self.camera, event_id, event_type, ".mp4")
        frames = [item for item in self._ring if item[0] >= t - pre]
        self._pending.append(_PendingClip(event_id, relpath, t + post, frames))

    def close(self, timeout: float = 10.0) -> None:
        """Write the clips still collecting with what they have (a stop must not lose evidence)."""
        for clip in self._pending:
            try:
                self._jobs.put(clip, timeout=timeout)
            except queue.Full:
                log.warning("%s: clip for event %d dropped at shutdown", self.camera, clip.event_id)
        self._pending.clear()
        try:
            self._jobs.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._writer.join(timeout)

    # the clip writer's thread -------------------------------------------------------------------------
    def _write_clips(self) -> None:
        while True:
            clip = self._jobs.get()
            if clip is None:
                return
            if not clip.frames:
                continue
            try:
                encode_clip(clip.frames, self.storage / clip.relpath)
                self.store.update(clip.event_id, clip_path=clip.relpath)
                self.clips_written += 1
            except Exception as exc:  # noqa: BLE001 - a failed clip is logged and counted; monitoring goes on
                self.clip_errors += 1
                log.warning("%s: clip for event %d not written: %s", self.camera, clip.event_id, exc)


def encode_clip(frames: list[tuple[float, bytes]], path: Path) -> None:
    """An MP4 with each frame at its own time (millisecond timestamps), so the clip plays in real time
    even when the camera's rate wandered; written under its partial name, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(path)
    height, width = _decoded(frames[0][1]).shape[:2]
    writer = Mp4Writer(part, width, height, CLIP_RATE, timing=PTS, encoding=EVIDENCE)
    try:
        for t, jpeg in frames:
            writer.write(_decoded(jpeg), t)
    finally:
        writer.close()
    os.replace(part, path)


def _decoded(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
