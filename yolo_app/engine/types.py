"""The typed values that cross threads. All are frozen: a Frame is never mutated after capture."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import supervision as sv


class SourceKind(str, enum.Enum):
    CAMERA = "camera"
    VIDEO = "video"
    IMAGE = "image"
    IMAGES = "images"  # an ordered sequence of image files (folder or glob)
    STREAM = "stream"
    DEMO = "demo"


class ChannelPolicy(str, enum.Enum):
    """What a full Channel does with the next item: frames from capture to inference, results from
    inference to each sink.

    LATEST: keep only the newest (live view, the GUI's display; every replaced item is counted as dropped).
    ALL: lossless, bounded, blocking (files, records; every item arrives exactly once, in order).
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
    # A file whose frames may come at uneven intervals (phones lower the rate in dim light; screen recordings):
    # its annotated video keeps each frame's own time, where frame i at i / fps would drift from the record
    # and the audio (engine/readers._uneven says which files).
    uneven: bool = False

    @property
    def default_policy(self) -> ChannelPolicy:
        return ChannelPolicy.LATEST if self.live else ChannelPolicy.ALL


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


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Where a source frame lands inside the network input."""

    new_w: int
    new_h: int
    top: int
    bottom: int
    left: int
    right: int

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.new_h + self.top + self.bottom, self.new_w + self.left + self.right


@dataclass(frozen=True, slots=True)
class HeadCounts:
    """How one frame's boxes were whittled down: every candidate the head predicted (one per grid
    cell and stride), those whose score passed ``conf``, and those kept (by NMS, or an end-to-end
    head's top-k)."""

    candidates: int
    above_conf: int
    kept: int
    head: str = "nms"  # nms, or end2end: an end-to-end head keeps its top-k without NMS (engine/heads.py)


@dataclass(frozen=True, slots=True, eq=False)
class GridScores:
    """The head's per-cell scores for the grid view: ``scores[i]`` is candidate i's best class score
    (or the score of ``class_id`` when one class is chosen). Candidates are ordered stride by stride,
    each a row-major grid of ``input_hw / stride`` cells, as YOLOv8/v9 heads emit them."""

    scores: np.ndarray  # (candidates,) float32, sigmoid scores in 0..1
    strides: tuple[int, ...]
    letterbox: Letterbox
    class_id: int | None
    shown_stride: int | None = None  # the one stride to show; None: all (the best score over strides)


@dataclass(frozen=True, eq=False)
class Boxes:
    """One frame's detections as plain arrays, what records, tallies and exports read. Supervision's
    ``Detections`` (for its annotators, trackers and zones) is made from them on demand: importing
    supervision is 0.4 s of a start that only writes records."""

    xyxy: np.ndarray  # (N, 4) float32 pixel corners in the source frame
    confidence: np.ndarray | None  # (N,)
    class_id: np.ndarray | None  # (N,) int
    tracker_id: np.ndarray | None = None  # (N,) int, -1 for a box on no track yet (engine/tracking.py)
    data: dict[str, np.ndarray] = field(default_factory=dict)  # class_name, class_probs, anchor, classification

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> Boxes:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int),
                   data={"class_name": np.array([], dtype=object)})

    @classmethod
    def of(cls, detections: sv.Detections) -> Boxes:
        return cls(detections.xyxy, detections.confidence, detections.class_id, detections.tracker_id,
                   dict(detections.data))

    def to_supervision(self) -> sv.Detections:
        import supervision as sv

        return sv.Detections(xyxy=self.xyxy, confidence=self.confidence, class_id=self.class_id,
                             tracker_id=self.tracker_id, data=dict(self.data))


class _SupervisionView:
    boxes: Boxes

    @cached_property
    def detections(self) -> sv.Detections:
        """``boxes`` as supervision's ``Detections``, made at the first use and kept."""
        return self.boxes.to_supervision()


@dataclass(frozen=True, eq=False)
class Result(_SupervisionView):
    frame: Frame
    boxes: Boxes  # pixel xyxy in the source frame; data: class_name, class_probs, anchor
    timings: Timings
    model_id: str
    done_at: float  # time.monotonic() when inference finished with it
    counts: HeadCounts | None = None
    grid: GridScores | None = None  # only while the grid view is on
    inferred: bool = True  # False: a gate (motion) skipped the detector; detections are empty


@dataclass(frozen=True, eq=False)
class Detected(_SupervisionView):
    """What the detector found in one frame."""

    # data: class_name, class_probs (N, nc) and anchor (the head's candidate index), where the head says them
    boxes: Boxes
    timings: Timings
    counts: HeadCounts
    grid: GridScores | None = None
