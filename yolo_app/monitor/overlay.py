"""Zones and lines drawn on a frame with their live counts, masks shaded, and on request the boxes the filters
held back greyed with the filter's name (snapshots, the web page, the GUI's monitoring view)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import supervision as sv

from yolo_app.monitor.zones import LineCounter, ZoneWatcher

ZONE_COLOUR = (0, 200, 255)  # BGR amber
LINE_COLOUR = (255, 120, 0)  # BGR blue
MASK_COLOUR = (40, 40, 40)  # a dark shade: nothing in there counts
HELD_COLOUR = (160, 160, 160)


def draw_masks(image: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
    if masks:
        shade = image.copy()
        for mask in masks:
            cv2.fillPoly(shade, [np.round(mask).astype(np.int32)], MASK_COLOUR)
        cv2.addWeighted(shade, 0.55, image, 0.45, 0, dst=image)
        for mask in masks:
            cv2.polylines(image, [np.round(mask).astype(np.int32)], True, HELD_COLOUR, 1, cv2.LINE_AA)
    return image


def draw_held_back(image: np.ndarray, detections: sv.Detections) -> np.ndarray:
    """The boxes the filters held back, thin and grey, each with its filter's name."""
    why = detections.data.get("held_back")
    if why is None:
        return image
    scale = max(0.35, image.shape[1] / 2000)
    names = detections.data.get("class_name", [""] * len(detections))
    for box, reason, name, score in zip(detections.xyxy, why, names, detections.confidence):
        if reason:
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            cv2.rectangle(image, (x1, y1), (x2, y2), HELD_COLOUR, 1, cv2.LINE_AA)
            _label(image, f"{reason}: {name} {score:.2f}", (x1, y2 + 2), HELD_COLOUR, scale)
    return image


def draw_geometry(image: np.ndarray, zones: Sequence[ZoneWatcher], lines: Sequence[LineCounter],
                  masks: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Draws in place and returns the image: masks shaded; zones and lines outlined, zones lightly filled, each
    one's counts by its name."""
    draw_masks(image, masks)
    scale = max(0.4, image.shape[1] / 1600)
    thickness = max(1, round(image.shape[1] / 640))
    if zones:
        fill = image.copy()
        for watcher in zones:
            cv2.fillPoly(fill, [np.round(watcher.contour).astype(np.int32)], ZONE_COLOUR)
        cv2.addWeighted(fill, 0.15, image, 0.85, 0, dst=image)
    for watcher in zones:
        points = np.round(watcher.contour).astype(np.int32)
        cv2.polylines(image, [points], True, ZONE_COLOUR, thickness, cv2.LINE_AA)
        x, y = points.reshape(-1, 2).min(axis=0)
        _label(image, f"{watcher.zone.name}: {watcher.occupancy} now, {watcher.entered} in",
               (int(x) + 4, int(y) + 4), ZONE_COLOUR, scale)
    for counter in lines:
        (ax, ay), (bx, by) = [(round(x), round(y)) for x, y in counter.line.points]
        cv2.line(image, (ax, ay), (bx, by), LINE_COLOUR, thickness + 1, cv2.LINE_AA)
        cv2.circle(image, (ax, ay), thickness + 3, LINE_COLOUR, -1)  # the first point: "in" is to its right
        _label(image, f"{counter.line.name}: in {counter.crossed_in}, out {counter.crossed_out}",
               (min(ax, bx) + 4, min(ay, by) - 4 - round(22 * scale)), LINE_COLOUR, scale)
    return image


def _label(image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int], scale: float) -> None:
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x = min(max(0, origin[0]), max(0, image.shape[1] - w - 6))
    y = min(max(0, origin[1]), max(0, image.shape[0] - h - base - 6))
    cv2.rectangle(image, (x, y), (x + w + 6, y + h + base + 6), colour, -1)
    cv2.putText(image, text, (x + 3, y + h + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
