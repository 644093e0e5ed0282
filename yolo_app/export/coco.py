"""COCO detection export: ``NAME.coco.json`` plus the frames it lists, as JPEGs in ``NAME/`` beside it.

Ids follow the record: an image's id is its frame number and a category's id the model's class id,
both from 0 (the same numbers as the JSONL, the CSV and the YOLO dataset; pycocotools accepts 0).
Annotation ids start at 1, because COCOeval takes id 0 to mean "no match".
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from yolo_app.engine.sinks import AtomicPath
from yolo_app.settings import ExportOptions
from yolo_app.export.dataset import atomic_folder, frame_stems, kept_lines, write_jpeg
from yolo_app.export.frames import source_frames
from yolo_app.engine.record import Record


def write_coco(record: Record, target: Path, options: ExportOptions) -> None:
    lines = kept_lines(record, options)
    frames = source_frames(record, lines, "coco")
    stems = frame_stems(lines)
    folder = target.with_name(record.stem)
    out = AtomicPath(target)
    with atomic_folder(folder, record) as part:
        for line, image in frames:
            write_jpeg(part / f"{stems[line['frame']]}.jpg", image)
    document = coco_document(record, lines, {frame: f"{folder.name}/{stem}.jpg" for frame, stem in stems.items()})
    out.part.write_text(json.dumps(document), encoding="utf-8")
    out.finish(True)


def coco_document(record: Record, lines: list[dict], file_names: dict[int, str]) -> dict:
    header, now = record.header, datetime.now(timezone.utc)
    sightings = [(line["frame"], det) for line in lines for det in line["detections"]]
    return {
        "info": {
            "description": f"{header.get('model', 'YOLO')} detections of {header.get('source', record.stem)}",
            "version": "1.0", "year": now.year, "contributor": "yolo-app", "url": "",
            "date_created": now.isoformat(timespec="seconds"),
        },
        "licenses": [],
        "images": [{"id": line["frame"], "file_name": file_names[line["frame"]],
                    "width": line["width"], "height": line["height"]} for line in lines],
        "annotations": [annotation(number, frame, det) for number, (frame, det) in enumerate(sightings, 1)],
        "categories": [{"id": cid, "name": name, "supercategory": ""} for cid, name in record.names.items()],
    }


def annotation(number: int, image_id: int, det: dict) -> dict:
    x1, y1, x2, y2 = det["xyxy"]
    w, h = round(x2 - x1, 2), round(y2 - y1, 2)
    item = {"id": number, "image_id": image_id, "category_id": det["class_id"], "bbox": [x1, y1, w, h],
            "area": round(w * h, 2), "iscrowd": 0, "score": det["confidence"]}
    if "track_id" in det:
        item["track_id"] = det["track_id"]
    if det.get("classification"):  # CVAT-style attributes, which COCO tools keep and ignore
        c = det["classification"]
        item["attributes"] = {"classification": c["label"], "classification_confidence": c["confidence"]}
    return item
