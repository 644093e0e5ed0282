"""The typed values that cross threads. All are frozen: a Frame is never mutated after capture."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import supervision as sv


class SourceKind(str, enum.Enum):
    CAMERA = "camera"
    VIDEO = "video"
    IMAGE = "image"
    IMAGES = "images"  # an ordered sequence of image files (folder or glob)
    STREAM = "stream"
    DEMO = "demo"


class FramePolicy(str, enum.Enum):
    """How capture hands frames to inference.

    LATEST: keep only the newest frame (live view; every replaced frame is counted as dropped).
    ALL: lossless, bounded, blocking (files; every frame is processed exactly once, in order).
    """

    LATEST = "latest"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class SourceInfo:
    kind: SourceKind
    uri: str
    width: int
    height: int
    fps: Fraction | None  # None when the source does not say (image sequences, some cameras)
    frame_count: int | None  # None when unknown (live sources, some containers)
    live: bool

    @property
    def default_policy(self) -> FramePolicy:
        return FramePolicy.LATEST if self.live else FramePolicy.ALL


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    source_id: str
    index: int  # position in the source, counting frames dropped by the LATEST policy
    pts_s: float | None  # container PTS for files (from 0); monotonic s since start for live; None for images
    image: np.ndarray  # HxWx3 BGR uint8, read-only by convention
    captured_at: float  # time.monotonic() when capture produced it, for end-to-end latency
    path: str | None = None  # the file this frame came from, for image sequences

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds spent per stage for one frame (batched stages are split evenly)."""

    pre: float
    infer: float
    post: float


@dataclass(frozen=True, slots=True, eq=False)
class Result:
    frame: Frame
    detections: sv.Detections  # pixel xyxy in the source frame; data["class_name"] holds the names
    timings: Timings
    model_id: str
    done_at: float  # time.monotonic() when inference finished with it
