"""The cameras' live pictures for the web page: the newest frame drawn by the camera's renderer (boxes, zones,
lines and counts, as the window shows them) and encoded as JPEG, at most ``fps`` times a second per camera,
however many pages watch it: 20 open views of one camera cost one drawing per period, not 20."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Protocol

import cv2
import numpy as np

from yolo_app.engine.types import Result

JPEG_QUALITY = 75
MAX_WIDTH = 1280  # a phone or a grid of cameras needs no more; the snapshot of an event keeps the full size


class Watched(Protocol):
    latest: Result | None

    def render(self, result: Result) -> np.ndarray: ...


@dataclass(frozen=True)
class LivePicture:
    jpeg: bytes
    captured_at: float  # the frame's capture time (time.monotonic())


class LivePictures:
    def __init__(self, cameras: Mapping[str, Watched], fps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cameras = cameras
        self.period = 1.0 / fps
        self._clock = clock
        self._locks = {name: threading.Lock() for name in cameras}
        self._cache: dict[str, tuple[float, Result, LivePicture]] = {}
        self.drawn = 0  # pictures drawn and encoded (the benchmark's and the tests' count)

    def picture(self, name: str) -> LivePicture | None:
        """The camera's live picture (None: no frame yet). Raises KeyError for a camera the monitor lacks."""
        camera = self.cameras[name]
        with self._locks[name]:  # one page draws, the others wait for it and take the same picture
            now = self._clock()
            cached = self._cache.get(name)
            result = camera.latest
            if cached is not None and (now - cached[0] < self.period or cached[1] is result):
                return cached[2]
            if result is None:
                return None
            image = camera.render(result)
            h, w = image.shape[:2]
            if w > MAX_WIDTH:
                image = cv2.resize(image, (MAX_WIDTH, round(h * MAX_WIDTH / w)), interpolation=cv2.INTER_AREA)
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                return cached[2] if cached else None
            self.drawn += 1
            picture = LivePicture(jpeg.tobytes(), result.frame.captured_at)
            self._cache[name] = (now, result, picture)
            return picture
