"""Motion gating: skip the detector on frames where nothing moves (most of a camera's day).

A small grey, blurred copy of each frame is compared with a slowly updated background; a pixel has
changed when it differs by more than ``PIXEL_DELTA``. Detection keeps running for ``cooldown_s`` after
the last motion so that a person who stops walking is not dropped at once, and while objects are in
view it still runs on every ``STATIONARY_EVERY``-th still frame (as Frigate checks stationary objects),
so a person standing still keeps one track instead of being counted again when they move on.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from yolo_app.engine.types import Frame

WIDTH = 320  # motion is judged on a 320-px-wide copy: ~1 ms a frame, and blind to sensor noise
PIXEL_DELTA = 25
BACKGROUND_RATE = 0.05  # how fast the background follows slow changes (light, shadows)
STATIONARY_EVERY = 5


class MotionGate:
    def __init__(self, threshold: float, cooldown_s: float = 2.0) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._background: np.ndarray | None = None
        self._last_motion = float("-inf")
        self.checked = 0
        self.skipped = 0
        self.last_fraction = 0.0
        self.objects_present = False  # set by the monitor from the last inferred frame
        self._still = 0

    @property
    def skipped_fraction(self) -> float:
        return self.skipped / self.checked if self.checked else 0.0

    def changed_fraction(self, image: np.ndarray) -> float:
        h, w = image.shape[:2]
        small = cv2.resize(image, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(np.float32)
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey
            return 1.0  # the first frame is all news
        changed = float(np.count_nonzero(cv2.absdiff(grey, self._background) > PIXEL_DELTA)) / grey.size
        cv2.accumulateWeighted(grey, self._background, BACKGROUND_RATE)
        return changed

    def __call__(self, frame: Frame) -> bool:
        """True when the frame should go through the detector."""
        # Frame time, so a file played faster than real time keeps the same cooldown in frames.
        now = frame.pts_s if frame.pts_s is not None else time.monotonic()
        if now < self._last_motion:  # a looping file started again
            self._last_motion = now
        self.last_fraction = self.changed_fraction(frame.image)
        self.checked += 1
        if self.last_fraction >= self.threshold:
            self._last_motion = now
        if now - self._last_motion <= self.cooldown_s:
            self._still = 0
            return True
        self._still += 1
        if self.objects_present and self._still % STATIONARY_EVERY == 0:
            return True
        self.skipped += 1
        return False
