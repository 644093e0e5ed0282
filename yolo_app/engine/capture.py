"""The capture thread: reads a source, stamps frames, hands them on under the channel's policy.

Live sources lose frames only in the LATEST channel (counted there), never in the reader. When a live
source drops (camera unplugged, stream cut) and a ``reopen`` factory is given, capture reconnects with
exponential back-off instead of ending, and never feeds black or stale frames meanwhile.
"""

from __future__ import annotations

import enum
import logging
import time
from typing import Callable

import av

from yolo_app.engine.channel import Channel
from yolo_app.engine.readers import FrameReader
from yolo_app.engine.stats import RateMeter
from yolo_app.engine.types import Frame
from yolo_app.engine.worker import Worker

log = logging.getLogger(__name__)

# What a live source raises when it drops; anything else is a bug or bad input and ends capture.
SOURCE_DROP_ERRORS = (ConnectionError, TimeoutError, OSError, av.FFmpegError)


class CaptureState(str, enum.Enum):
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    ENDED = "ended"


class CaptureThread(Worker):
    def __init__(
        self,
        reader: FrameReader,
        out: Channel[Frame],
        *,
        source_id: str,
        max_frames: int | None = None,
        realtime: bool = False,
        reopen: Callable[[], FrameReader] | None = None,
        backoff_s: tuple[float, float] = (1.0, 30.0),
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        super().__init__(f"capture:{source_id}", on_error)
        self.reader = reader
        self.out = out
        self.source_id = source_id
        self.max_frames = max_frames
        self.realtime = realtime  # pace files at their own frame rate, as if live
        self.reopen = reopen
        self.backoff_s = backoff_s
        self.state = CaptureState.RUNNING
        self.captured = 0
        self.rate = RateMeter()
        self.reconnects = 0

    def run(self) -> None:
        try:
            self._capture()
        finally:
            self.state = CaptureState.ENDED
            self._close_reader()
        self.out.close()  # only on a clean end: after a failure the pipeline cancels instead

    def _capture(self) -> None:
        live = self.reader.info.live
        start = time.monotonic()
        while not self.stopping:
            try:
                for image, pts, path in self.reader.frames():
                    now = time.monotonic()
                    if live:
                        pts = now - start
                    elif self.realtime and pts is not None and self.stop_event.wait(max(0.0, start + pts - now)):
                        return
                    frame = Frame(self.source_id, self.captured, pts, image, time.monotonic(), path)
                    if self.stopping or not self.out.put(frame):
                        return
                    self.captured += 1
                    self.rate.tick()
                    if self.max_frames is not None and self.captured >= self.max_frames:
                        return
                return
            except SOURCE_DROP_ERRORS as exc:
                if self.reopen is None or not live:
                    raise
                log.warning("%s dropped (%s); reconnecting", self.source_id, exc)
                if not self._reconnect():
                    return

    def _reconnect(self) -> bool:
        """Reopen with exponential back-off until it works or we are stopped."""
        self.state = CaptureState.RECONNECTING
        self._close_reader()
        delay, ceiling = self.backoff_s
        while not self.stop_event.wait(delay):
            try:
                self.reader = self.reopen()  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 - any failure to reopen means try again later
                log.info("%s still unavailable (%s); next try in %.0f s", self.source_id, exc, delay)
                delay = min(delay * 2, ceiling)
                continue
            self.reconnects += 1
            self.state = CaptureState.RUNNING
            return True
        return False

    def _close_reader(self) -> None:
        try:
            self.reader.close()
        except Exception:  # noqa: BLE001 - closing a dead device must not mask the real error
            log.debug("closing %s failed", self.source_id, exc_info=True)
