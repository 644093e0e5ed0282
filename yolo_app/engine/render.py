"""Drawing boxes and labels with supervision annotators, styled once per frame size."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from yolo_app.engine.grid import draw_grid_view
from yolo_app.engine.types import Result

if TYPE_CHECKING:
    import supervision as sv


def format_label(class_name: str, confidence: float, tracker_id: int | None = None,
                 classification: dict | None = None) -> str:
    """``"car 0.87"``, ``"#12 car 0.87"`` once tracking gives the box an id, and
    ``"car 0.91 · sports car 0.72"`` with a second-stage classification."""
    text = f"{class_name} {confidence:.2f}"
    if classification is not None:
        text += f" · {classification['label']} {classification['confidence']:.2f}"
    return f"#{tracker_id} {text}" if tracker_id is not None else text


def detection_labels(detections: sv.Detections) -> list[str]:
    names = detections.data.get("class_name", np.array([str(c) for c in detections.class_id]))
    trackers = detections.tracker_id if detections.tracker_id is not None else [None] * len(detections)
    classified = detections.data.get("classification", [None] * len(detections))
    return [
        format_label(str(name), float(conf), None if tid is None or int(tid) < 0 else int(tid), cls)
        for name, conf, tid, cls in zip(names, detections.confidence, trackers, classified)
    ]


class FrameRenderer:
    """Draws a frame's detections on a copy of it; line width and text scale follow the resolution."""

    def __init__(self, width: int, height: int) -> None:
        import supervision as sv  # 0.4 s: paid by runs that draw, not by those that only write records

        thickness = sv.calculate_optimal_line_thickness((width, height))
        self._boxes = sv.BoxAnnotator(thickness=thickness)
        self._labels = sv.LabelAnnotator(
            text_scale=sv.calculate_optimal_text_scale((width, height)),
            text_thickness=max(1, thickness // 2),
            text_padding=max(3, thickness * 2),
            smart_position=True,  # keep labels inside the frame and off each other
        )

    def render_result(self, result: Result) -> np.ndarray:
        """The frame with its boxes, over the grid view when the detector returned one."""
        return self.render(result.frame.image, result.detections, result)

    def render(self, image: np.ndarray, detections: sv.Detections, result: Result | None = None) -> np.ndarray:
        scene = image.copy()  # frames are shared between sinks and never mutated
        if result is not None and result.grid is not None:
            draw_grid_view(scene, result.grid, detections, result.counts)
        if len(detections):
            self._boxes.annotate(scene, detections)
            self._labels.annotate(scene, detections, labels=detection_labels(detections))
        return scene
