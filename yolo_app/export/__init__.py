"""Exports derived from the JSONL record, so they can be made again later without the model.

Each format is a pure function from the record to a file beside it; ``export_record`` picks them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from yolo_app.errors import UserError
from yolo_app.export.record import read_record, record_stem
from yolo_app.export.tables import write_csv, write_mot

EXPORTERS: dict[str, tuple[str, Callable[[list[dict], Path], None]]] = {
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


def export_record(jsonl: Path, formats: list[str], out_dir: Path | None = None) -> list[Path]:
    """Write each format for one JSONL record; returns the files written."""
    lines = read_record(jsonl)
    folder = out_dir or jsonl.parent
    written = []
    for name in formats:
        pattern, write = EXPORTERS[name]
        target = folder / pattern.format(stem=record_stem(jsonl))
        write(lines, target)
        written.append(target)
    return written
