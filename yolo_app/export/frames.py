"""The source's frames, read again for the dataset exports (coco, yolo, crops).

The record keeps boxes, not pixels, so these exports go back to the source its header names: a
video is decoded again from the start, counting frames from 0 exactly as the annotate pipeline did;
an image sequence's files are read one by one. Every frame read must have the size the record says,
so a replaced or edited source cannot silently pair boxes with the wrong pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from yolo_app.engine.readers import AvReader
from yolo_app.engine.sources import SourceSpec
from yolo_app.engine.types import SourceKind
from yolo_app.errors import UserError
from yolo_app.engine.record import Record

IMAGE_KINDS = (SourceKind.IMAGE.value, SourceKind.IMAGES.value)
CHANGED = "it changed since the record was made"


def source_frames(record: Record, lines: list[dict], export: str) -> Iterator[tuple[dict, np.ndarray]]:
    """``(line, BGR image)`` for each of ``lines`` (record lines, in order). ``export`` names the
    format in errors. The checks that need no decoding run now, before the caller writes anything."""
    header = _source_header(record, export)
    if header["kind"] in IMAGE_KINDS:
        missing = next((line["file"] for line in lines if not Path(line["file"]).is_file()), None)
        if missing:
            raise UserError(f"the {export} export needs the source images, but {missing} is gone "
                            "(moved or deleted); put it back or annotate the images where they are now")
        return _checked(_image_frames(lines), header["source"])
    is_stream = header["kind"] == SourceKind.STREAM.value  # an http(s) file: not live, readable again
    if not is_stream and not Path(header["source"]).is_file():
        raise UserError(f"the {export} export needs the source frames, but {header['source']} is gone "
                        "(moved or deleted); put it back or annotate the video where it is now")
    return _checked(_video_frames(header, lines, is_stream), header["source"])


def _source_header(record: Record, export: str) -> dict:
    header = record.header
    if not header:
        raise UserError(f"{record.path} has no header line (made by an older yolo-app), so the {export} export "
                        "cannot find its source; annotate the source again")
    if header.get("live"):
        raise UserError(f"the {export} export needs the source frames; live sources cannot be read again "
                        "— record the stream to a file first")
    return header


def _image_frames(lines: list[dict]) -> Iterator[tuple[dict, np.ndarray]]:
    for line in lines:
        image = cv2.imread(line["file"], cv2.IMREAD_COLOR)  # as the annotate reader did (EXIF rotation too)
        if image is None:
            raise UserError(f"{line['file']}: not a readable image any more; {CHANGED}")
        yield line, image


def _video_frames(header: dict, lines: list[dict], is_stream: bool) -> Iterator[tuple[dict, np.ndarray]]:
    if not lines:
        return
    source = header["source"]
    wanted = {line["frame"]: line for line in lines}
    last = max(wanted)
    kind = SourceKind.STREAM if is_stream else SourceKind.VIDEO
    reader = AvReader(SourceSpec(kind, source, Path(source).stem))
    try:
        count, recorded = reader.info.frame_count, header.get("frame_count")
        if count and recorded and count != recorded:
            raise UserError(f"{source} has {count} frames, the record says {recorded}: {CHANGED}")
        for index, (image, _pts, _path) in enumerate(reader.frames()):
            if index in wanted:
                yield wanted[index], image
            if index >= last:  # no need to decode the rest
                return
    finally:
        reader.close()
    raise UserError(f"{source} ended before frame {last} of the record: {CHANGED}")


def _checked(frames: Iterator[tuple[dict, np.ndarray]], source: str) -> Iterator[tuple[dict, np.ndarray]]:
    for line, image in frames:
        height, width = image.shape[:2]
        if (width, height) != (line["width"], line["height"]):
            raise UserError(f"{line.get('file') or source}: frame {line['frame']} is {width}x{height}, the record says "
                            f"{line['width']}x{line['height']}: {CHANGED}")
        yield line, image
