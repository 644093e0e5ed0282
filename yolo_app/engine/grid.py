"""The grid view: how a grid-based single-stage detector sees a frame.

YOLOv8/v9 cut the letterboxed input into square cells at three strides (8, 16 and 32 pixels: an
80x80, 40x40 and 20x20 grid at 640x640). Every cell of every grid is one candidate: it predicts a box
around its centre and an independent sigmoid score per class. ``conf`` keeps the candidates whose best
score passes it, and NMS keeps the best of overlapping ones. This module maps those cells back
through the letterbox onto the source frame and draws them: a heat map of the per-cell score, the
grid lines of one stride, the cells the surviving boxes came from, and the candidate counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from yolo_app.engine.heads import HEAD_END2END
from yolo_app.engine.types import GridScores, HeadCounts, Letterbox

if TYPE_CHECKING:
    import supervision as sv

HEAT_OPACITY = 0.65  # at score 1; a cell's tint fades with its score so the scene stays readable
LINE_COLOUR = (200, 200, 200)
CELL_COLOUR = (0, 255, 255)  # yellow (BGR): the cells that produced a surviving box


def level_shapes(input_hw: tuple[int, int], strides: tuple[int, ...]) -> list[tuple[int, int]]:
    """Rows and columns of each stride's grid for a network input of ``input_hw``."""
    return [(input_hw[0] // s, input_hw[1] // s) for s in strides]


def anchor_cell(anchor: int, input_hw: tuple[int, int], strides: tuple[int, ...]) -> tuple[int, int, int]:
    """Candidate index -> (stride, row, column): the head lists the grids stride by stride, row-major."""
    for stride, (rows, cols) in zip(strides, level_shapes(input_hw, strides)):
        if anchor < rows * cols:
            return stride, anchor // cols, anchor % cols
        anchor -= rows * cols
    raise ValueError(f"candidate {anchor} is beyond the grids of {input_hw} at strides {strides}")


def to_source(x: float, y: float, box: Letterbox, width: int, height: int) -> tuple[float, float]:
    """A network-input pixel position in source-frame pixels (undoing the letterbox)."""
    return (x - box.left) * width / box.new_w, (y - box.top) * height / box.new_h


def cell_rect(stride: int, row: int, col: int, box: Letterbox, width: int, height: int
              ) -> tuple[float, float, float, float]:
    """A cell's square, in source-frame pixels."""
    x1, y1 = to_source(col * stride, row * stride, box, width, height)
    x2, y2 = to_source((col + 1) * stride, (row + 1) * stride, box, width, height)
    return x1, y1, x2, y2


def score_maps(grid: GridScores) -> list[np.ndarray]:
    """The per-cell scores as one (rows, cols) array per stride."""
    maps, start = [], 0
    for rows, cols in level_shapes(grid.letterbox.input_hw, grid.strides):
        maps.append(grid.scores[start:start + rows * cols].reshape(rows, cols))
        start += rows * cols
    return maps


def heat_map(grid: GridScores, width: int, height: int) -> np.ndarray:
    """Per-pixel score in the source frame (float32, 0..1): the shown stride's cells, or the highest
    over all strides."""
    box = grid.letterbox
    in_h, in_w = box.input_hw
    shown = grid.shown_stride if grid.shown_stride in grid.strides else None
    levels = [m for s, m in zip(grid.strides, score_maps(grid)) if shown is None or s == shown]
    full = np.max([cv2.resize(m, (in_w, in_h), interpolation=cv2.INTER_NEAREST) for m in levels], axis=0)
    inside = full[box.top:box.top + box.new_h, box.left:box.left + box.new_w]  # drop the padding
    return cv2.resize(inside, (width, height), interpolation=cv2.INTER_NEAREST)


def draw_grid_view(image: np.ndarray, grid: GridScores, detections: sv.Detections,
                   counts: HeadCounts | None) -> np.ndarray:
    """Draw the heat map, the shown stride's grid lines (the coarsest when all strides are shown:
    8-pixel lines would hide the scene) and the surviving boxes' cells on ``image`` (BGR, changed in
    place and returned)."""
    height, width = image.shape[:2]
    # Scores span decades (0.001 ... 0.9): a square root lets the weak cells show as well.
    heat = np.sqrt(heat_map(grid, width, height))
    colours = cv2.applyColorMap(cv2.convertScaleAbs(heat, alpha=255), cv2.COLORMAP_JET)
    alpha = cv2.merge([cv2.convertScaleAbs(heat, alpha=255 * HEAT_OPACITY)] * 3)
    # image * (1 - alpha) + colours * alpha, in saturating uint8 arithmetic (several times faster than floats)
    cv2.add(cv2.multiply(image, cv2.bitwise_not(alpha), scale=1 / 255),
            cv2.multiply(colours, alpha, scale=1 / 255), dst=image)
    _draw_lines(image, grid.letterbox, grid.shown_stride if grid.shown_stride in grid.strides else max(grid.strides))
    if "anchor" in detections.data:
        for anchor in detections.data["anchor"]:
            s, row, col = anchor_cell(int(anchor), grid.letterbox.input_hw, grid.strides)
            x1, y1, x2, y2 = cell_rect(s, row, col, grid.letterbox, width, height)
            cv2.rectangle(image, (round(x1), round(y1)), (round(x2), round(y2)), CELL_COLOUR, 2)
    if counts is not None:
        _draw_counts(image, counts)
    return image


def _draw_lines(image: np.ndarray, box: Letterbox, stride: int) -> None:
    height, width = image.shape[:2]
    in_h, in_w = box.input_hw
    for x in range(0, in_w + 1, stride):
        sx, _ = to_source(x, 0, box, width, height)
        if 0 <= sx <= width:
            cv2.line(image, (round(sx), 0), (round(sx), height - 1), LINE_COLOUR, 1)
    for y in range(0, in_h + 1, stride):
        _, sy = to_source(0, y, box, width, height)
        if 0 <= sy <= height:
            cv2.line(image, (0, round(sy)), (width - 1, round(sy)), LINE_COLOUR, 1)


def counts_text(counts: HeadCounts) -> str:
    kept = "kept (top-k, no NMS)" if counts.head == HEAD_END2END else "after NMS"
    return f"{counts.candidates} candidates > {counts.above_conf} above conf > {counts.kept} {kept}"


def _draw_counts(image: np.ndarray, counts: HeadCounts) -> None:
    text = counts_text(counts)
    scale = max(0.4, image.shape[1] / 1600)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(image, (0, 0), (w + 12, h + base + 12), (0, 0, 0), -1)
    cv2.putText(image, text, (6, h + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
