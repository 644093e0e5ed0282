"""Reading the JSONL record back, with one clear error for a file that is not one."""

from __future__ import annotations

import json
from pathlib import Path

from yolo_app.errors import UserError

SUFFIX = ".detections.jsonl"


def record_stem(path: Path) -> str:
    """``clip.detections.jsonl`` -> ``clip``."""
    name = path.name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else path.stem


def read_record(path: Path) -> list[dict]:
    if not path.is_file():
        raise UserError(f"no such detections file: {path}")
    if ".partial." in path.name:
        raise UserError(f"{path} is a partial record (the run was interrupted); annotate again to export it")
    lines = []
    with path.open(encoding="utf-8") as fh:
        for number, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                if not isinstance(line.get("detections"), list) or "frame" not in line:
                    raise ValueError("missing 'frame' or 'detections'")
            except (ValueError, AttributeError) as exc:
                raise UserError(f"{path}:{number}: not a yolo-app detections line ({exc})") from None
            lines.append(line)
    if not lines:
        raise UserError(f"{path}: no detections lines in it")
    return lines
