"""COCO detection export in the layout COCO tools, Datumaro and CVAT read.

``NAME_coco/annotations/instances_default.json`` lists the kept frames, whose un-annotated pixels are
written as JPEGs into ``NAME_coco/images/default/`` (file names relative to that folder). ``NAME_coco.zip``
is the same tree zipped, the layout of CVAT's own "COCO 1.0" export with images: CVAT's "Upload
annotations" and "Import dataset" unpack it and read it with Datumaro's ``coco_instances`` importer
(which refuses a tree without ``images/``), matching ``frame_000123`` to the task's frame 123 (CVAT's own
name for a video frame). ``default`` is the subset name CVAT gives a task.

Ids are COCO's, all from 1: image ids in frame order, annotation ids, and category ids, which are the
model's class ids + 1 (Datumaro, and so CVAT, reads category 0 as "no label"). Every model class is a
category. Every annotation has ``segmentation: []`` (a box only; Datumaro warns without the field).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from yolo_app.engine.record import Record
from yolo_app.export.dataset import atomic_folder, frame_stems, kept_lines, write_jpeg, write_zip
from yolo_app.export.frames import source_frames
from yolo_app.settings import ExportOptions

SUBSET = "default"
ANNOTATIONS = f"annotations/instances_{SUBSET}.json"


def write_coco(record: Record, target: Path, options: ExportOptions) -> list[Path]:
    """Write ``target`` (``NAME_coco/``) and ``NAME_coco.zip`` beside it; returns both."""
    lines = kept_lines(record, options)
    frames = source_frames(record, lines, "coco")
    stems = frame_stems(lines)
    zipped = target.with_name(target.name + ".zip")
    with atomic_folder(target, record) as part:
        zipped.unlink(missing_ok=True)  # an old zip must not sit beside a new folder
        images = part / "images" / SUBSET
        images.mkdir(parents=True)
        for line, image in frames:
            write_jpeg(images / f"{stems[line['frame']]}.jpg", image)
        document = coco_document(record, lines, {frame: f"{stem}.jpg" for frame, stem in stems.items()})
        annotations = part / ANNOTATIONS
        annotations.parent.mkdir()
        annotations.write_text(json.dumps(document), encoding="utf-8")
        write_zip(zipped, {path.relative_to(part).as_posix(): path for path in sorted(part.rglob("*"))
                           if path.is_file()})
    return [target, zipped]


def coco_document(record: Record, lines: list[dict], file_names: dict[int, str]) -> dict:
    header, now = record.header, datetime.now(timezone.utc)
    image_ids = {line["frame"]: number for number, line in enumerate(lines, 1)}
    sightings = [(image_ids[line["frame"]], det) for line in lines for det in line["detections"]]
    return {
        "info": {
            "description": f"{header.get('model', 'YOLO')} detections of {header.get('source', record.stem)}",
            "version": "1.0", "year": now.year, "contributor": "yolo-app", "url": "",
            "date_created": now.isoformat(timespec="seconds"),
        },
        "licenses": [],
        "images": [{"id": image_ids[line["frame"]], "file_name": file_names[line["frame"]],
                    "width": line["width"], "height": line["height"]} for line in lines],
        "annotations": [annotation(number, image_id, det) for number, (image_id, det) in enumerate(sightings, 1)],
        "categories": [{"id": cid + 1, "name": name, "supercategory": ""} for cid, name in record.names.items()],
    }


def annotation(number: int, image_id: int, det: dict) -> dict:
    x1, y1, x2, y2 = det["xyxy"]
    w, h = round(x2 - x1, 2), round(y2 - y1, 2)
    item = {"id": number, "image_id": image_id, "category_id": det["class_id"] + 1, "segmentation": [],
            "area": round(w * h, 2), "bbox": [x1, y1, w, h], "iscrowd": 0, "score": det["confidence"]}
    if "track_id" in det:
        item["track_id"] = det["track_id"]
    if det.get("classification"):  # CVAT-style attributes, which COCO tools keep and ignore
        c = det["classification"]
        item["attributes"] = {"classification": c["label"], "classification_confidence": c["confidence"]}
    return item
