"""The JSONL detections record, the app's primary output: its format in one place.

A record is a header line (``"record": "yolo-app detections"``: the source, its size and fps, the model
with all its class names, its backend, precision and head, the settings) and then one line per frame:
frame index, time, size, [file], detections in source-frame pixels. Exports (``yolo_app/export``) are
made from it alone. This module writes the lines (for ``JsonlSink`` and snapshots), reads a record back
(with one clear error for a file that is not one), decides whether an existing record was made alike
(``--resume`` skips it) and joins the records of a video's frame ranges (``--ray``) into one, byte for
byte the record of a run on one machine.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from yolo_app.engine.tracking import track_id
from yolo_app.engine.types import Result, SourceInfo
from yolo_app.errors import RuntimeFailure, UserError

if TYPE_CHECKING:
    from yolo_app.engine.inference import Detector

SUFFIX = ".detections.jsonl"
RECORD_TAG = "yolo-app detections"
RECORD_VERSION = 1
# The header fields that say what made a record (everything but the source): two records with the same
# values come from the same model, backend, precision, head and settings.
MADE_BY = ("model", "backend", "precision", "head", "task", "names", "settings", "track", "top_k", "classify")
# What must match for an existing record to stand for this run's (the source included).
ALIKE = ("source", "model", "backend", "precision", "head", "settings", "track", "top_k", "classify")


def header(info: SourceInfo, detector: Detector, *, track: bool, top_k: int, classify: dict | None) -> dict:
    """The first line: enough to make every export later without the model or the run."""
    model = detector.model
    return {
        "record": RECORD_TAG, "version": RECORD_VERSION,
        "source": info.uri if info.live else str(Path(info.uri).resolve()), "kind": info.kind.value, "live": info.live,
        "width": info.width, "height": info.height,
        "fps": None if info.fps is None else float(info.fps), "frame_count": info.frame_count,
        "model": model.model_id, "backend": model.backend, "precision": model.precision, "head": model.head,
        "task": model.task,
        "names": {str(k): v for k, v in model.names.items()},
        "settings": dataclasses.asdict(detector.settings), "track": track, "top_k": top_k, "classify": classify,
    }


def encode(line: dict) -> bytes:
    """One line of the file, compact, newline-terminated."""
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def top_classes(probs: np.ndarray, names: dict[int, str], k: int) -> list[list]:
    """``[["car", 0.81], ["truck", 0.12], …]``: a box's k best classes by the head's score."""
    best = np.argsort(-probs, kind="stable")[:k]
    return [[names.get(int(i), str(int(i))), round(float(probs[i]), 5)] for i in best]


def frame_line(result: Result, names: dict[int, str] | None = None, top_k: int = 0) -> dict:
    """One frame's line: the frame and its detections in source-frame pixels; with ``top_k`` and the
    model's ``names``, each box's k best classes too."""
    frame, det = result.frame, result.boxes
    line: dict = {
        "frame": frame.index,
        "time": None if frame.pts_s is None else round(frame.pts_s, 6),
        "width": frame.width,
        "height": frame.height,
    }
    if frame.path is not None:
        line["file"] = frame.path
    class_names = det.data.get("class_name", [])
    line["detections"] = []
    for i in range(len(det)):
        item = {
            "xyxy": [round(float(v), 2) for v in det.xyxy[i]],
            "class_id": int(det.class_id[i]),
            "class_name": str(class_names[i]),
            "confidence": round(float(det.confidence[i]), 5),
        }
        if det.tracker_id is not None:  # tracking on: an id, or null for a box on no track yet
            item["track_id"] = track_id(det.tracker_id[i])
        if top_k and names and "class_probs" in det.data:
            item["top_classes"] = top_classes(det.data["class_probs"][i], names, top_k)
        if "classification" in det.data and det.data["classification"][i] is not None:  # the second stage
            item["classification"] = det.data["classification"][i]
        line["detections"].append(item)
    return line


# ---- reading ----

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
    """A whole record; records written before the header existed are read too (names from the boxes)."""
    if not path.is_file():
        raise UserError(f"no such detections file: {path}")
    if ".partial." in path.name:
        raise UserError(f"{path} is a partial record (the run was interrupted); annotate again to export it")
    head: dict = {}
    lines = []
    with path.open(encoding="utf-8") as fh:
        for number, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                if number == 1 and isinstance(line, dict) and line.get("record") == RECORD_TAG:
                    head = line
                    continue
                if not isinstance(line.get("detections"), list) or "frame" not in line:
                    raise ValueError("missing 'frame' or 'detections'")
            except (ValueError, AttributeError) as exc:
                raise UserError(f"{path}:{number}: not a yolo-app detections line ({exc})") from None
            lines.append(line)
    if not lines:
        raise UserError(f"{path}: no detections lines in it")
    return Record(path, head, lines)


def labels_in(data: bytes) -> Iterator[tuple[list[str], list[int | None] | None]]:
    """Each frame line's class names (and track ids, when tracked) in a piece of a record: a resumed
    run's summary counts the frames the interrupted run kept."""
    for text in data.splitlines():
        line = json.loads(text)
        if "detections" in line:
            dets = line["detections"]
            ids = [d.get("track_id") for d in dets] if dets and "track_id" in dets[0] else None
            yield [d["class_name"] for d in dets], ids


def made_alike(path: Path, this_header: dict) -> bool:
    """Whether the finished record at ``path`` was made from the same source by the same model with the
    same settings as a run whose header is ``this_header``."""
    try:
        with path.open(encoding="utf-8") as fh:
            old = json.loads(fh.readline())
    except (OSError, ValueError):
        return False
    return isinstance(old, dict) and all(old.get(k) == this_header.get(k) for k in ALIKE)


# ---- joining frame ranges ----

@dataclass(frozen=True)
class RangePart:
    """The record of frames [start, stop) of one video, made on its own; ``first_time``: the time of its
    first frame as the source's packets give it."""

    path: Path
    start: int
    stop: int
    first_time: float


def join_ranges(name: str, parts: list[RangePart], out: Path) -> list[list[str]]:
    """Write the one record of a video from its ranges' records (one header, every frame line in order)
    into ``out``; returns each frame's class names. A range that came back with another header, or not
    whole and in place, is a RuntimeFailure: the record would look complete and be wrong."""
    labels: list[list[str]] = []
    first_header = None
    with out.open("wb") as fh:
        for part in parts:
            lines = part.path.read_bytes().splitlines(keepends=True)
            first_header = first_header or lines[0]
            if lines[0] != first_header:
                raise RuntimeFailure(f"{name}: the workers' records differ (model, backend or settings) between "
                                     f"ranges; annotate it again")
            first = json.loads(lines[1]) if len(lines) > 1 else {}
            if len(lines) - 1 != part.stop - part.start or first.get("frame") != part.start \
                    or first.get("time") != round(part.first_time, 6):
                raise RuntimeFailure(f"{name}: frames {part.start}-{part.stop - 1} did not come back whole and in "
                                     f"place; annotate it again")
            if fh.tell() == 0:
                fh.write(first_header)
            fh.writelines(lines[1:])
            labels.extend([d["class_name"] for d in json.loads(text)["detections"]] for text in lines[1:])
    return labels
