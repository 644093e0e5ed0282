"""What a detection must be to count, per camera and class: Frigate's object filters (size, shape, score, and the
median score an object's history must reach) and masks. A detection held back says which filter held it, so
the window can show it greyed with the filter's name while people tune.

    objects:
      min_score: 0.5            # camera-wide, for every class
      filters:
        person: {min_area: 2000, max_ratio: 1.2, threshold: 0.7}   # per class, over the camera-wide values
    masks: [[[0, 0], [200, 0], [200, 120], [0, 120]]]             # bottom-centres inside are ignored
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from yolo_app.monitor.fields import Fields, nonempty, number

if TYPE_CHECKING:  # the config imports this module: OpenCV (and supervision with it) only where boxes are filtered
    import supervision as sv

FILTER_KEYS = ("min_area", "max_area", "min_ratio", "max_ratio", "min_score", "threshold")
MASK = "mask"  # the reason of a detection whose bottom-centre is in a mask


@dataclass(frozen=True)
class ObjectFilter:
    min_area: float = 0.0  # pixels, or a fraction of the frame when below 1
    max_area: float | None = None
    min_ratio: float = 0.0  # width / height
    max_ratio: float | None = None
    min_score: float = 0.0  # a detection below it is ignored
    threshold: float = 0.0  # the median of an object's last scores must reach it before the object counts

    def area_bounds(self, frame_area: float) -> tuple[float, float]:
        def pixels(value: float) -> float:
            return value * frame_area if value < 1 else value
        return pixels(self.min_area), float("inf") if self.max_area is None else pixels(self.max_area)


@dataclass(frozen=True)
class ObjectFilters:
    defaults: ObjectFilter = ObjectFilter()
    by_class: tuple[tuple[str, ObjectFilter], ...] = ()

    def of(self, label: str) -> ObjectFilter:
        """Per detection on the inference thread: a scan of a few pairs, no mapping built each time."""
        return next((f for name, f in self.by_class if name == label), self.defaults)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.by_class)


def held_back(detections: sv.Detections, filters: ObjectFilters, masks: tuple[np.ndarray, ...],
              frame_size: tuple[int, int], conf: float = 0.0) -> list[str | None]:
    """Per detection: None where it counts, else the first filter that holds it back: ``conf`` (below the
    config's detection threshold), ``min_score``, ``min_area`` ... ``mask``."""
    import cv2

    if not len(detections):
        return []
    names = detections.data.get("class_name", [str(c) for c in detections.class_id])
    frame_area = float(frame_size[0] * frame_size[1])
    reasons: list[str | None] = []
    for (x1, y1, x2, y2), score, name in zip(detections.xyxy, detections.confidence, names):
        f = filters.of(str(name))
        w, h = float(x2 - x1), float(y2 - y1)
        low, high = f.area_bounds(frame_area)
        ratio = w / h if h > 0 else float("inf")
        foot = (float(x1 + x2) / 2, float(y2))
        reasons.append(
            "conf" if score < conf else
            "min_score" if score < f.min_score else
            "min_area" if w * h < low else
            "max_area" if w * h > high else
            "min_ratio" if ratio < f.min_ratio else
            "max_ratio" if f.max_ratio is not None and ratio > f.max_ratio else
            MASK if any(cv2.pointPolygonTest(m, foot, False) >= 0 for m in masks) else None)
    return reasons


def mask_contours(masks: tuple[tuple[tuple[float, float], ...], ...]) -> tuple[np.ndarray, ...]:
    return tuple(np.array(m, dtype=np.float32).reshape(-1, 1, 2) for m in masks)


# --- monitor.yaml --------------------------------------------------------------------------------------------
def parse_filters(cam: Fields) -> ObjectFilters:
    """A camera's ``objects`` section: its own filter values, and ``filters`` per class over them."""
    if cam.data.get("objects") is None:
        return ObjectFilters()
    section = cam.sub("objects", cam.data["objects"], (*FILTER_KEYS, "filters"))
    defaults = _filter(section, ObjectFilter())
    by_class = []
    raw = section.data.get("filters")
    if raw is not None:
        per_class = section.sub("filters", raw, tuple(raw) if isinstance(raw, dict) else ())  # any class name
        for name, value in per_class.data.items():
            label = nonempty(name)
            by_class.append((label, _filter(per_class.sub(label, value, FILTER_KEYS), defaults)))
    return ObjectFilters(defaults, tuple(by_class))


def _filter(f: Fields, base: ObjectFilter) -> ObjectFilter:
    values: dict[str, Any] = {}
    for key in ("min_area", "max_area"):
        values[key] = f.get(key, getattr(base, key), number(0.0))
    for key in ("min_ratio", "max_ratio"):
        values[key] = f.get(key, getattr(base, key), number(0.0))
    for key in ("min_score", "threshold"):
        values[key] = f.get(key, getattr(base, key), number(0.0, 1.0))
    made = dataclasses.replace(base, **values)
    for low, high in (("min_area", "max_area"), ("min_ratio", "max_ratio")):
        lo, hi = getattr(made, low), getattr(made, high)
        if hi is not None and (lo < 1) == (hi < 1) and lo > hi:
            f.fail(f"{low} {lo} is above {high} {hi}", at=f"{f.where}.{low}")
    return made
