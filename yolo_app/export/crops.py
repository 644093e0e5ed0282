"""Crops export: each kept detection cut out of its source frame, one folder per class.

``NAME_crops/<class>/NAME_f000123_d0.jpg`` is detection 0 of frame 123 in the record (``d`` counts the
record's detections of that frame, before ``min_conf``, so a name always leads back to its JSONL
line). Boxes are cut to the image; a crop under 2 pixels on a side is skipped (nothing to see).
"""

from __future__ import annotations

import re
from pathlib import Path

from yolo_app.export.dataset import atomic_folder, clamp_box, kept_lines, write_jpeg
from yolo_app.export.frames import source_frames
from yolo_app.settings import ExportOptions
from yolo_app.engine.record import Record

MIN_SIDE = 2  # pixels


def write_crops(record: Record, target: Path, options: ExportOptions) -> None:
    lines = [line for line in kept_lines(record, options) if line["detections"]]  # decode only what is cut
    frames = source_frames(record, lines, "crops")
    with atomic_folder(target, record) as part:
        for line, image in frames:
            for det in line["detections"]:
                box = crop_box(det["xyxy"], line["width"], line["height"])
                if box is None:
                    continue
                x1, y1, x2, y2 = box
                folder = part / folder_name(det["class_name"])
                folder.mkdir(exist_ok=True)
                write_jpeg(folder / f"{record.stem}_f{line['frame']:06d}_d{det['index']}.jpg", image[y1:y2, x1:x2])


def crop_box(xyxy: list[float], width: int, height: int) -> tuple[int, int, int, int] | None:
    """The box in whole pixels inside the image, or None when a side is under ``MIN_SIDE``."""
    x1, y1, x2, y2 = (round(v) for v in clamp_box(xyxy, width, height))
    return (x1, y1, x2, y2) if x2 - x1 >= MIN_SIDE and y2 - y1 >= MIN_SIDE else None


def folder_name(class_name: str) -> str:
    """A class name as one folder name (a custom model's names may hold path separators)."""
    return re.sub(r"[\\/:]+", "_", class_name).strip(". ") or "unnamed"
