"""Exports derived from the JSONL record, so they can be made again later without the model.

Each format is a function ``write(record, target, options)`` that writes one file or folder beside
the record (through a temporary name, so a failed export never looks complete); coco and cvat also
write a zip for CVAT beside it and return every path they wrote. ``export_record`` picks them. Dataset
formats (coco, yolo, crops) also need the source's frames, read again from the source named in the
record's header.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from yolo_app.export.coco import write_coco
from yolo_app.export.crops import write_crops
from yolo_app.export.cvat import write_cvat
from yolo_app.settings import DATASET_FORMATS, EXPORT_FORMATS, ExportOptions, parse_formats
from yolo_app.engine.record import Record, read_record
from yolo_app.export.tables import write_csv, write_mot
from yolo_app.export.yolo import write_yolo


Writer = Callable[[Record, Path, ExportOptions], list[Path] | None]  # None: ``target`` alone

EXPORTERS: dict[str, tuple[str, Writer]] = {
    "csv": ("{stem}.detections.csv", write_csv),
    "mot": ("{stem}.mot.txt", write_mot),
    "coco": ("{stem}_coco", write_coco),
    "yolo": ("{stem}_yolo", write_yolo),
    "cvat": ("{stem}.cvat.xml", write_cvat),
    "crops": ("{stem}_crops", write_crops),
}

assert tuple(EXPORTERS) == EXPORT_FORMATS, "settings.EXPORT_FORMATS names the formats written here"
__all__ = ["DATASET_FORMATS", "EXPORTERS", "ExportOptions", "export_record", "parse_formats"]


def export_record(jsonl: Path, formats: list[str], out_dir: Path | None = None,
                  options: ExportOptions | None = None) -> list[Path]:
    """Write each format for one JSONL record; returns the files and folders written."""
    record = read_record(jsonl)
    folder = out_dir or jsonl.parent
    written = []
    for name in formats:
        pattern, write = EXPORTERS[name]
        target = folder / pattern.format(stem=record.stem)
        written += write(record, target, options or ExportOptions()) or [target]
    return written
