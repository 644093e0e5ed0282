"""Plain-text exports: CSV (one row per detection) and MOT Challenge tracks."""

from __future__ import annotations

import csv
from pathlib import Path

from yolo_app.engine.sinks import AtomicPath
from yolo_app.errors import UserError
from yolo_app.engine.record import Record

CSV_COLUMNS = ["frame", "time", "track_id", "class", "confidence", "x1", "y1", "x2", "y2"]
CLASSIFY_COLUMNS = ["classification", "classification_confidence"]  # only for records made with --classify


def write_csv(record: Record, target: Path, options: object = None) -> None:
    lines = record.frames
    classified = record.classified
    out = AtomicPath(target)
    with out.part.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS + (CLASSIFY_COLUMNS if classified else []))
        for line in lines:
            for det in line["detections"]:
                track = det.get("track_id")
                row = [line["frame"], "" if line.get("time") is None else line["time"],
                       "" if track is None else track, det["class_name"], det["confidence"], *det["xyxy"]]
                if classified:
                    c = det.get("classification")
                    row += [c["label"], c["confidence"]] if c else ["", ""]
                writer.writerow(row)
    out.finish(True)


def write_mot(record: Record, target: Path, options: object = None) -> None:
    """``frame,id,x,y,w,h,conf,-1,-1,-1``: frames and pixel coordinates 1-based as in the MOT
    Challenge (its tools subtract 1); boxes on no track are left out."""
    lines = record.frames
    if not record.tracked:
        raise UserError("the mot export needs track ids: run annotate with --track")
    out = AtomicPath(target)
    with out.part.open("w", encoding="utf-8") as fh:
        for line in lines:
            for det in line["detections"]:
                if det.get("track_id") is None:
                    continue
                x1, y1, x2, y2 = det["xyxy"]
                fh.write(f"{line['frame'] + 1},{det['track_id']},{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
                         f"{det['confidence']:.5f},-1,-1,-1\n")
    out.finish(True)
