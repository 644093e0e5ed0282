"""Exports derived from the JSONL record, so they can be made again later without the model.

Each format is a function ``write(record, target, options)`` that writes one file or folder beside
the record (through a temporary name, so a failed export never looks complete); ``export_record``
picks them. Dataset formats (coco, yolo, crops) also need the source's frames, read again from the
source named in the record's header.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from yolo_app.errors import UserError
from yolo_app.export.record import Record, read_record
from yolo_app.export.tables import write_csv, write_mot


@dataclass(frozen=True)
class ExportOptions:
    """What the dataset exports (coco, yolo, crops) keep; the record exports keep everything."""

    every: int = 1  # every Nth frame
    min_conf: float = 0.0  # detections below this are left out
    val_fraction: float = 0.2  # yolo: share of the kept frames in the validation split

    def __post_init__(self) -> None:
        if self.every < 1:
            raise UserError(f"--every must be at least 1, got {self.every}")
        if not 0.0 <= self.min_conf <= 1.0:
            raise UserError(f"--min-conf must be between 0 and 1, got {self.min_conf}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UserError(f"--val-fraction must be at least 0 and below 1, got {self.val_fraction}")


Writer = Callable[[Record, Path, ExportOptions], None]

EXPORTERS: dict[str, tuple[str, Writer]] = {
    "csv": ("{stem}.detections.csv", write_csv),
    "mot": ("{stem}.mot.txt", write_mot),
}


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
