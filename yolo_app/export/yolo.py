"""YOLO dataset export: ``NAME_yolo/`` that Ultralytics trains on as it is.

``data.yaml`` (absolute ``path``, ``train``/``val`` image folders, every model class under its own
id), ``images/{train,val}/STEM.jpg`` and ``labels/{train,val}/STEM.txt`` with one ``cls cx cy w h``
line per kept box, normalised to 0-1. A frame with no kept box gets an empty label file: a
background image, which teaches the model what is not an object.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from yolo_app.export.dataset import atomic_folder, clamp_box, frame_stems, kept_lines, write_jpeg
from yolo_app.export.frames import source_frames
from yolo_app.settings import ExportOptions
from yolo_app.engine.record import Record

VAL_BLOCKS = 5  # validation frames come from at most this many stretches spread over the video
MIN_BLOCK = 5  # frames per stretch at least, so most val frames have no near-twin in train beside them


def write_yolo(record: Record, target: Path, options: ExportOptions) -> None:
    lines = kept_lines(record, options)
    frames = source_frames(record, lines, "yolo")
    stems = frame_stems(lines)
    val = val_positions(len(lines), options.val_fraction)
    split = {line["frame"]: "val" if i in val else "train" for i, line in enumerate(lines)}
    with atomic_folder(target, record) as part:
        for line, image in frames:
            name, subset = stems[line["frame"]], split[line["frame"]]
            for kind in ("images", "labels"):
                (part / kind / subset).mkdir(parents=True, exist_ok=True)
            write_jpeg(part / "images" / subset / f"{name}.jpg", image)
            (part / "labels" / subset / f"{name}.txt").write_text(label_text(line), encoding="utf-8")
        data = {"path": str(target.resolve()), "train": "images/train",
                "val": "images/val" if val else "images/train", "names": record.names}
        (part / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def label_text(line: dict) -> str:
    """One ``cls cx cy w h`` row per box, 6 decimals; boxes with nothing left inside the image are skipped."""
    width, height = line["width"], line["height"]
    rows = []
    for det in line["detections"]:
        x1, y1, x2, y2 = clamp_box(det["xyxy"], width, height)
        if x2 > x1 and y2 > y1:
            rows.append(f"{det['class_id']} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                        f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}\n")
    return "".join(rows)


def val_positions(count: int, fraction: float) -> set[int]:
    """Positions (0..count-1) of the validation frames: ``fraction`` of them, at least one when
    ``fraction`` > 0 and there are two frames, never all. Consecutive video frames are near-duplicates,
    so a random frame-by-frame split would validate on copies of training frames; instead the val
    frames form up to ``VAL_BLOCKS`` contiguous stretches of at least ``MIN_BLOCK`` frames (one shorter
    stretch when there are fewer), with the training frames spread evenly in the gaps before, between
    and after them. Deterministic: the same record always splits the same way."""
    if fraction <= 0 or count < 2:
        return set()
    n_val = min(count - 1, max(1, round(count * fraction)))
    n_blocks = max(1, min(VAL_BLOCKS, n_val // MIN_BLOCK))
    n_train = count - n_val
    picked: set[int] = set()
    position = 0
    for block in range(n_blocks):
        position += n_train * (block + 1) // (n_blocks + 1) - n_train * block // (n_blocks + 1)  # a gap
        size = n_val * (block + 1) // n_blocks - n_val * block // n_blocks
        picked.update(range(position, position + size))
        position += size
    return picked
