"""The capture thread: reads a source, stamps frames, hands them on under the channel's policy.

Live sources lose frames only in the LATEST channel (counted there), never in the reader. A live source
that drops is reopened by its ``SourceSupervisor`` (engine/supervisor.py), inside the reader this thread
iterates: capture never feeds black or stale frames meanwhile, and stopping it interrupts the wait.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Sequence

from yolo_app.engine.channel import Channel
from yolo_app.engine.cpu import LEDGER
from yolo_app.engine.readers import FrameReader
from yolo_app.engine.stats import RateMeter
from yolo_app.engine.types import Frame
from yolo_app.engine.worker import Worker

log = logging.getLogger(__name__)

class Playback:
    """Pause, step, seek, speed and looping for file sources.

    Set from any thread (a GUI button); the capture thread applies it between frames. A seek while
    paused shows the frame it lands on, like a video player.
    """

    def __init__(self, realtime: bool = False, loop: bool = False) -> None:
        self._cond = threading.Condition()
        self.realtime = realtime  # pace at the source's own rate; False: as fast as inference allows
        self.loop = loop
        self.paused = False
        self._steps = 0
        self._seek_to: float | None = None
        self._ended = False  # capture is past the end of the file: a seek cannot reach it any more

    def pause(self) -> None:
        with self._cond:
            self.paused = True

    def resume(self) -> None:
        with self._cond:
            self.paused = False
            self._cond.notify_all()

    def step(self, frames: int = 1) -> None:
        with self._cond:
            self._steps += frames
            self._cond.notify_all()

    def seek(self, seconds: float) -> bool:
        """False when capture has ended: the caller must start the source again to get there."""
        with self._cond:
            if self._ended:
                return False
            self._seek_to = max(0.0, seconds)
            if self.paused:
                self._steps = max(self._steps, 1)
            self._cond.notify_all()
            return True

    def wait_turn(self, stop: threading.Event) -> bool | None:
        """Block while paused with nothing to do. None when stopped, else whether it waited."""
        waited = False
        with self._cond:
            while self.paused and not self._steps and self._seek_to is None and not stop.is_set():
                self._cond.wait(0.1)
                waited = True
        return None if stop.is_set() else waited

    def take_seek(self) -> float | None:
        with self._cond:
            target, self._seek_to = self._seek_to, None
            return target

    def at_end(self, seekable: bool) -> float | None:
        """Capture reached the end of the file: where to play on from (a seek that came meanwhile, or 0
        when looping), or None: capture ends, and later seeks say so (no seek is lost in between)."""
        with self._cond:
            target, self._seek_to = self._seek_to, None
            if seekable and target is None and self.loop:
                target = 0.0
            if not seekable or target is None:
                self._ended = True
                return None
            return target

    def take_step(self) -> None:
        with self._cond:
            if self.paused and self._steps:
                self._steps -= 1


class CaptureThread(Worker):
    def __init__(
        self,
        reader: FrameReader,
        outs: Sequence[Channel[Frame]],
        *,
        source_id: str,
        max_frames: int | None = None,
        first_index: int = 0,
        playback: Playback | None = None,
        wait_for: Sequence[threading.Event] = (),
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        super().__init__(f"capture:{source_id}", on_error)
        self.reader = reader
        self.outs = list(outs)  # one per inference branch: capture once, fan out
        self.source_id = source_id
        self.max_frames = max_frames
        self.playback = playback or Playback()
        self.wait_for = list(wait_for)  # consumers that must be ready before the first frame is read
        self.captured = 0
        self.rate = RateMeter()
        self._next_index = first_index  # resuming: the reader continues after the frames done
        self._resync_index = False
        self._epoch = time.monotonic()

    def run(self) -> None:
        try:
            self._capture()
        finally:
            self._close_reader()
        for out in self.outs:  # only on a clean end: after a failure the pipeline cancels instead
            out.close()

    def stop(self) -> None:
        super().stop()
        self.reader.interrupt()  # a reader waiting for its source to come back returns now

    def _capture(self) -> None:
        for ready in self.wait_for:
            while not ready.wait(0.1):
                if self.stopping:
                    return
        self.reader.drop_backlog()  # a live source's frames queued while the models loaded are not read
        while not self.stopping:  # (a stop during that reopen ends here)
            if self._play() or not self._play_on():
                return

    def _play(self) -> bool:
        """Deliver frames until the source ends (False) or we must stop (True)."""
        info, playback = self.reader.info, self.playback
        origin: float | None = None  # monotonic time of pts 0, for real-time pacing
        if self.max_frames is not None and self.captured >= self.max_frames:
            return True  # a resumed run whose frame limit was reached already
        for image, pts, path in LEDGER.charged_iter("decode", self.reader.frames()):
            waited = playback.wait_turn(self.stop_event)
            if waited is None:
                return True
            target = playback.take_seek()
            if target is not None and self.reader.seekable:
                self.reader.seek(target)
                self._resync_index, origin = True, None
                continue
            playback.take_step()
            now = time.monotonic()
            if info.live:
                pts = now - self._epoch  # one clock across reconnects
            elif playback.realtime and pts is not None and not playback.paused:
                if origin is None or waited:
                    origin = now - pts
                if self.stop_event.wait(max(0.0, origin + pts - now)):
                    return True
            if self._resync_index and pts is not None and info.fps:
                self._next_index, self._resync_index = round(pts * info.fps), False
            frame = Frame(self.source_id, self._next_index, pts, image, time.monotonic(), path)
            if self.stopping or not all(out.put(frame) for out in self.outs):
                return True
            self._next_index += 1
            self.captured += 1
            self.rate.tick()
            if self.max_frames is not None and self.captured >= self.max_frames:
                return True
        return False

    def _play_on(self) -> bool:
        """At the end of a file: go where a late seek asked, or back to 0 when looping. False: capture is done."""
        target = self.playback.at_end(self.reader.seekable)
        if target is None:
            return False
        self.reader.seek(target)
        self._next_index, self._resync_index = 0, target > 0
        return True

    def _close_reader(self) -> None:
        try:
            self.reader.close()
        except Exception:  # noqa: BLE001 - closing a dead device must not mask the real error
            log.debug("closing %s failed", self.source_id, exc_info=True)
