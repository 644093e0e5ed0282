"""Reading the JSONL record back, with one clear error for a file that is not one.

A record is a header line (``"record": "yolo-app detections"``: the source, its size and fps, the
model and all its class names, the settings) and then one line per frame. Records written before the
header existed are still read; their class names come from the detections themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from yolo_app.errors import UserError

SUFFIX = ".detections.jsonl"
RECORD_TAG = "yolo-app detections"
RECORD_VERSION = 1


@dataclass
class Record:
    path: Path
    header: dict  # empty for records without a header line
    frames: list[dict]  # one per frame: frame, time, width, height, [file], detections

    @property
    def stem(self) -> str:
        return record_stem(self.path)

    @property
    def names(self) -> dict[int, str]:
        """Every class the model knows (from the header), else the ones that occur in the record."""
        if self.header.get("names"):
            return {int(k): str(v) for k, v in self.header["names"].items()}
        seen = {det["class_id"]: det["class_name"] for line in self.frames for det in line["detections"]}
        return dict(sorted(seen.items()))

    @property
    def classified(self) -> bool:
        """Made with a second-stage classifier (--classify)."""
        return bool(self.header.get("classify")) or any(
            "classification" in det for line in self.frames for det in line["detections"])

    @property
    def tracked(self) -> bool:
        return any("track_id" in det for line in self.frames for det in line["detections"])


def record_stem(path: Path) -> str:
    """``clip.detections.jsonl`` -> ``clip``."""
    name = path.name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else path.stem


def read_record(path: Path) -> Record:
    if not path.is_file():
        raise UserError(f"no such detections file: {path}")
    if ".partial." in path.name:
        raise UserError(f"{path} is a partial record (the run was interrupted); annotate again to export it")
    header: dict = {}
    lines = []
    with path.open(encoding="utf-8") as fh:
        for number, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                if number == 1 and isinstance(line, dict) and line.get("record") == RECORD_TAG:
                    header = line
                    continue
                if not isinstance(line.get("detections"), list) or "frame" not in line:
                    raise ValueError("missing 'frame' or 'detections'")
            except (ValueError, AttributeError) as exc:
                raise UserError(f"{path}:{number}: not a yolo-app detections line ({exc})") from None
            lines.append(line)
    if not lines:
        raise UserError(f"{path}: no detections lines in it")
    return Record(path, header, lines)
