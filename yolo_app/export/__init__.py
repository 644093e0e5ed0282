"""Exports derived from the JSONL record, so they can be made again later without the model.

Each format is a function ``write(record, target, options)`` that writes one file or folder beside
the record (through a temporary name, so a failed export never looks complete); ``export_record``
picks them. Dataset formats (coco, yolo, crops) also need the source's frames, read again from the
source named in the record's header.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from yolo_app.errors import UserError
from yolo_app.export.coco import write_coco
from yolo_app.export.crops import write_crops
from yolo_app.export.cvat import write_cvat
from yolo_app.export.options import ExportOptions
from yolo_app.export.record import Record, read_record
from yolo_app.export.tables import write_csv, write_mot
from yolo_app.export.yolo import write_yolo


Writer = Callable[[Record, Path, ExportOptions], None]

EXPORTERS: dict[str, tuple[str, Writer]] = {
    "csv": ("{stem}.detections.csv", write_csv),
    "mot": ("{stem}.mot.txt", write_mot),
    "coco": ("{stem}.coco.json", write_coco),
    "yolo": ("{stem}_yolo", write_yolo),
    "cvat": ("{stem}.cvat.xml", write_cvat),
    "crops": ("{stem}_crops", write_crops),
}


DATASET_FORMATS = ("coco", "yolo", "crops")  # made from the source's frames, read again after the run


def parse_formats(text: str) -> list[str]:
    """``"csv,mot"`` -> ["csv", "mot"]; an unknown name is a UserError listing the known ones."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in EXPORTERS]
    if unknown or not formats:
        raise UserError(f"unknown export format '{', '.join(unknown) or text}'; available: {', '.join(EXPORTERS)}")
    return list(dict.fromkeys(formats))


def export_record(jsonl: Path, formats: list[str], out_dir: Path | None = None,
                  options: ExportOptions | None = None) -> list[Path]:
    """Write each format for one JSONL record; returns the files and folders written."""
    record = read_record(jsonl)
    folder = out_dir or jsonl.parent
    written = []
    for name in formats:
        pattern, write = EXPORTERS[name]
        target = folder / pattern.format(stem=record.stem)
        write(record, target, options or ExportOptions())
        written.append(target)
    return written
