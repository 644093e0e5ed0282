"""The box the user selected and how it carries over to the next frames: which box a click hits, which
row the selection is in a later frame, and what the class-score panel shows for it.

Qt-free on purpose: the rules are plain functions of ``sv.Detections`` (source-frame pixels), unit-tested
on real detections; the window only calls them and paints the answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import supervision as sv

from yolo_app.engine.render import detection_labels
from yolo_app.engine.record import top_classes
from yolo_app.engine.tracking import track_id

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Selection:
    """A box the user chose: its row in the frame it was chosen in, and its track id then (None when
    tracking was off or the box was on no track yet)."""

    row: int
    track: int | None = None


@dataclass(frozen=True)
class BoxScores:
    """What the class-score panel shows for the selected box."""

    heading: str  # the box's label as drawn on the video: "#12 person 0.91"
    scores: tuple[tuple[str, float], ...]  # (class name, score), best first
    box: Box  # xyxy, source-frame pixels: the highlight on the video


def select(detections: sv.Detections, row: int) -> Selection | None:
    """The selection of ``row`` (None when the frame has no such row), remembering its track id."""
    if not 0 <= row < len(detections):
        return None
    ids = detections.tracker_id
    return Selection(row, None if ids is None else track_id(ids[row]))


def hit_test(detections: sv.Detections, x: float, y: float) -> int | None:
    """The row of the box under the point (x, y), in source-frame pixels; None when no box holds it.

    A box's edges count as inside. Where boxes overlap the smallest by area wins, so a box lying inside a
    bigger one (a bottle held by a person) can still be picked; between equal areas, the earlier row.
    """
    boxes = np.asarray(detections.xyxy).reshape(-1, 4)
    inside = (boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])
    hits = np.flatnonzero(inside)
    if not len(hits):
        return None
    areas = (boxes[hits, 2] - boxes[hits, 0]) * (boxes[hits, 3] - boxes[hits, 1])
    return int(hits[np.argmin(areas)])  # argmin: the first of equal minima, i.e. the earlier row


def follow(selection: Selection | None, detections: sv.Detections) -> int | None:
    """The selected box's row in another frame (None: not in this one).

    A box chosen on a track is found by its id while the frame carries ids; while that track is missing
    the answer is None, but the selection itself stays, so the box is selected again when its track comes
    back. A box chosen without a track, or any box once tracking is switched off, keeps its row number
    (if the frame has that many boxes): rows have no identity of their own.
    """
    if selection is None:
        return None
    ids = detections.tracker_id
    if selection.track is not None and ids is not None:
        rows = [i for i, t in enumerate(ids) if track_id(t) == selection.track]
        return rows[0] if rows else None
    return selection.row if selection.row < len(detections) else None


def box_scores(detections: sv.Detections, row: int, names: dict[int, str], k: int) -> BoxScores:
    """The panel for ``row``: its label, its ``k`` best classes by the head's own score for each class on
    that box (``data["class_probs"]``, named with the model's ``names``), and its box.

    A model whose output has no per-class scores (an end-to-end export that picks its top-k inside the
    graph returns only each box's class and score) shows just that one class with the box's confidence.
    """
    one = detections[row:row + 1]
    probs = detections.data.get("class_probs")
    if probs is not None:
        scores = tuple((str(name), float(score)) for name, score in top_classes(probs[row], names, k))
    else:
        class_id = int(detections.class_id[row])
        name = one.data["class_name"][0] if "class_name" in one.data else names.get(class_id, str(class_id))
        scores = ((str(name), float(detections.confidence[row])),)[:k]
    x1, y1, x2, y2 = (float(v) for v in detections.xyxy[row])
    return BoxScores(detection_labels(one)[0], scores, (x1, y1, x2, y2))
