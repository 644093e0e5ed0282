"""What the dataset exports (coco, yolo, crops) share: the frames and boxes they keep, the names their
images take, JPEG writing, and output folders and zips that appear whole or not at all."""

from __future__ import annotations

import os
import shutil
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from yolo_app.engine.sinks import AtomicPath
from yolo_app.errors import RuntimeFailure, UserError
from yolo_app.settings import ExportOptions
from yolo_app.engine.record import Record

JPEG_QUALITY = 95  # dataset images are training data: keep them close to the decoded frame


def kept_lines(record: Record, options: ExportOptions) -> list[dict]:
    """Every ``options.every``-th frame line of the record (by position: frames 0, N, 2N… of a file
    annotated in full), each with only its detections at or above ``options.min_conf``. A kept
    detection carries ``"index"``, its position in the record's line, so file names lead back to it."""
    return [
        {**line, "detections": [{**det, "index": i} for i, det in enumerate(line["detections"])
                                if det["confidence"] >= options.min_conf]}
        for line in record.frames[:: options.every]
    ]


def frame_stems(lines: list[dict]) -> dict[int, str]:
    """The image file stem per frame: ``frame_000123`` for a video, the original file's stem for an
    image sequence (made unique when two files share one, e.g. a.jpg and a.png)."""
    stems: dict[int, str] = {}
    for line in lines:
        stem = Path(line["file"]).stem if line.get("file") else f"frame_{line['frame']:06d}"
        if stem in stems.values():
            stem = f"{stem}_{line['frame']:06d}"
        stems[line["frame"]] = stem
    return stems


def clamp_box(xyxy: list[float], width: int, height: int) -> tuple[float, float, float, float]:
    """A box cut to the image (trackers and rounding can put an edge a little outside it)."""
    x1, y1, x2, y2 = xyxy
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
            min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeFailure(f"cannot encode {path.name} as JPEG")
    path.write_bytes(encoded.tobytes())


@contextmanager
def atomic_folder(final: Path, record: Record) -> Iterator[Path]:
    """Yield ``NAME.part/`` to fill. When the block succeeds it replaces ``NAME/``; when it fails it
    is removed. An old ``NAME/`` goes first, as with files: an old result never sits beside a new one."""
    _refuse_source_inside(final, record)
    part = final.with_name(final.name + ".part")
    for stale in (part, final):  # ``part``: left by a killed export
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
    part.mkdir(parents=True)
    try:
        yield part
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    os.replace(part, final)


def _refuse_source_inside(final: Path, record: Record) -> None:
    """A folder export named like the source folder (``photos/`` beside ``photos.detections.jsonl``)
    would replace the user's own images."""
    folder = final.resolve()
    sources = [record.header.get("source"), *(line.get("file") for line in record.frames)]
    for source in filter(None, sources):
        path = Path(source).resolve()
        if path == folder or folder in path.parents:
            raise UserError(f"exporting to {final} would replace the source {source}; choose another folder with --out")


def write_zip(target: Path, members: dict[str, Path]) -> None:
    """``target`` holding each file of ``members`` under its name in the archive (``annotations/x.json``),
    written as ``target.part`` and renamed when complete. JPEGs are stored as they are (deflating them
    gains nothing), text is deflated."""
    out = AtomicPath(target)
    try:
        with zipfile.ZipFile(out.part, "w") as archive:
            for name, path in members.items():
                method = zipfile.ZIP_STORED if path.suffix == ".jpg" else zipfile.ZIP_DEFLATED
                archive.write(path, name, compress_type=method)
    except BaseException:
        out.part.unlink(missing_ok=True)
        raise
    out.finish(True)
