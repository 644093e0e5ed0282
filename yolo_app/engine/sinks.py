"""Where results go: annotated video, annotated images, the JSONL record, a per-class tally.

Every sink has ``write(result)`` and ``close(complete)``. Files are written under ``NAME.part`` and
renamed when complete; an interrupted or failed run renames them to ``NAME.partial.EXT`` instead, so
nothing a user made is lost and nothing incomplete looks complete.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import IO, Protocol

import cv2
import numpy as np

from yolo_app.engine.cpu import LEDGER
from yolo_app.engine.render import FrameRenderer
from yolo_app.engine.stats import seconds_since_process_start
from yolo_app.engine.record import encode, frame_line
from yolo_app.engine.tracking import track_id
from yolo_app.engine.types import ChannelPolicy, Result, SourceInfo
from yolo_app.engine.video_file import CFR, SOURCE, Mp4Writer
from yolo_app.errors import RuntimeFailure, UserError


DEFAULT_FPS = Fraction(30)  # for sources that do not say (some cameras and streams)


class Checkpoints(Protocol):
    """Where a sink reports how far its output is safely on disk (``engine/checkpoint.Checkpointer``):
    a protocol, so that sinks need not know how a run's checkpoints are kept."""

    def due(self, index: int) -> bool:
        """Whether frame ``index`` is a checkpoint frame."""

    def reached(self, party: str, frames_done: int, data: dict) -> None:
        """``party`` (the sink's name) has ``frames_done`` frames on disk; ``data`` lets it continue there."""


class Sink:
    """Base of all sinks. ``policy`` is how its input channel behaves when the sink falls behind."""

    policy = ChannelPolicy.ALL
    name = "sink"

    def write(self, result: Result) -> None:
        raise NotImplementedError

    def close(self, complete: bool) -> None:
        """Finish the output. ``complete`` is False after an interruption or a failure."""

    def outputs(self, complete: bool) -> list[Path]:
        """The files (or folder) this sink left for the user, as named after ``close(complete)``."""
        return []

    def warnings(self) -> list[str]:
        """What the user should know about the outputs (e.g. audio left out), once closed."""
        return []


class FileSink(Sink):
    """A sink writing one file through an ``AtomicPath``: ``path`` when complete, else ``partial_path``."""

    path: Path

    def outputs(self, complete: bool) -> list[Path]:
        return [self.path if complete else partial_path(self.path)]


def partial_path(final: Path) -> Path:
    """``clip.annotated.mp4`` -> ``clip.annotated.partial.mp4``."""
    return final.with_name(f"{final.stem}.partial{final.suffix}")


def prepare_out_dir(path: Path) -> Path:
    """Create the output folder and prove it is writable, or raise one clear UserError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".yolo_app_write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to output folder {path}: {exc.strerror or exc}") from None
    return path


class AtomicPath:
    """A file written under a temporary name and moved to its final (or partial) name at the end."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.part = final.with_name(final.name + ".part")
        for stale in (final, partial_path(final)):  # an old result must not sit beside the new one
            stale.unlink(missing_ok=True)

    def finish(self, complete: bool, empty: bool = False) -> Path | None:
        """Move the file to its final name, or to its partial name when incomplete. An incomplete
        file with nothing in it is removed: there is nothing to keep."""
        if not complete and empty:
            self.part.unlink(missing_ok=True)
            return None
        target = self.final if complete else partial_path(self.final)
        os.replace(self.part, target)
        return target


class VideoSink(FileSink):
    """Annotated MP4: every result drawn and encoded, at the source's size.

    ``timing``: by default each frame at i / fps, the source's own rate (annotation: same count, same rate), or,
    for a file whose frames come at uneven intervals, at its time in the source (``"source"``); ``"pts"``:
    each frame at its capture time (a recording of a live view, where frames arrive at the inference rate,
    not the source's). See engine/video_file.py.
    """

    name = "video"

    def __init__(self, path: Path, info: SourceInfo, codec: str = "auto", timing: str | None = None,
                 renderer: FrameRenderer | None = None) -> None:
        self.output = AtomicPath(path)
        self.path = path
        self.renderer = renderer or FrameRenderer(info.width, info.height)
        timing = timing or (SOURCE if info.uneven else CFR)
        self._writer = Mp4Writer(self.output.part, info.width, info.height, info.fps or DEFAULT_FPS, codec, timing)

    @property
    def frames(self) -> int:
        return self._writer.frames

    def write(self, result: Result) -> None:
        with LEDGER.charge("draw"):
            image = self.renderer.render_result(result)
        self.write_image(image, result.frame.pts_s)

    def write_image(self, image: np.ndarray, pts_s: float | None = None) -> None:
        """Encode an already drawn BGR frame (``pts_s``: its capture time, or its time in the source; unused
        at an even rate)."""
        self._writer.write(image, pts_s)

    def close(self, complete: bool) -> None:
        try:
            self._writer.close()
        finally:
            self.output.finish(complete, empty=self.frames == 0)


class JsonlSink(FileSink):
    """The primary record: a header line (``header``: what made it), then one JSON object per frame,
    in order.

    With a ``checkpointer`` the file is flushed to disk after every checkpoint frame and its length
    reported; ``resume_at`` continues a ``.part`` file from such a length (an interrupted run).
    """

    name = "jsonl"

    def __init__(self, path: Path, header: dict | None = None, checkpointer: Checkpoints | None = None,
                 resume_at: int | None = None, top_k: int = 0) -> None:
        self.output = AtomicPath(path)
        self.path = path
        self.lines = 0
        self.checkpointer = checkpointer
        self.top_k = top_k
        self.names = {int(k): v for k, v in header["names"].items()} if header and "names" in header else None
        if resume_at is not None:
            self._fh: IO[bytes] = self.output.part.open("r+b")
            self._fh.truncate(resume_at)  # lines after the checkpoint are written again
            self._fh.seek(resume_at)
            self.lines = 1
        else:
            self._fh = self.output.part.open("wb")
            if header is not None:
                self._fh.write(encode(header))

    def write(self, result: Result) -> None:
        with LEDGER.charge("record"):
            self._fh.write(encode(frame_line(result, self.names, self.top_k)))
        self.lines += 1
        frame = result.frame
        if self.checkpointer is not None and self.checkpointer.due(frame.index):
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.checkpointer.reached(self.name, frame.index + 1, {"offset": self._fh.tell(), "last_pts": frame.pts_s})

    def close(self, complete: bool) -> None:
        self._fh.close()
        self.output.finish(complete, empty=self.lines == 0)


class ImageSink(Sink):
    """``STEM.annotated.jpg`` per image; each file is written whole or not at all."""

    name = "images"

    def __init__(self, out_dir: Path, stem: str | None = None) -> None:
        self.out_dir = out_dir
        self.stem = stem  # a single image takes its source's name; sequences use each file's stem
        self.written: list[Path] = []
        self._renderers: dict[tuple[int, int], FrameRenderer] = {}
        self._used: set[str] = set()

    def write(self, result: Result) -> None:
        frame = result.frame
        renderer = self._renderers.setdefault((frame.width, frame.height), FrameRenderer(frame.width, frame.height))
        stem = self.stem or (Path(frame.path).stem if frame.path else f"frame_{frame.index:06d}")
        if stem in self._used and frame.path:  # a.jpg and a.png in one folder
            stem = Path(frame.path).name.replace(".", "_")
        self._used.add(stem)
        ok, encoded = cv2.imencode(".jpg", renderer.render(frame.image, result.detections),
                                   [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise RuntimeFailure(f"cannot encode annotated image for {stem}")
        output = AtomicPath(self.out_dir / f"{stem}.annotated.jpg")
        output.part.write_bytes(np.asarray(encoded).tobytes())
        self.written.append(output.finish(True))

    def outputs(self, complete: bool) -> list[Path]:
        return self.written[:1] if len(self.written) == 1 else [self.out_dir]


class TallySink(Sink):
    """Counts frames and detections per class, for the end-of-run summary."""

    name = "tally"

    def __init__(self) -> None:
        self.frames = 0
        self.per_class: Counter[str] = Counter()
        self.tracks: set[int] = set()
        self.first_result_s: float | None = None  # process age when the first result arrived

    def write(self, result: Result) -> None:
        if self.first_result_s is None:
            self.first_result_s = seconds_since_process_start()
        boxes = result.boxes
        ids = None if boxes.tracker_id is None else [track_id(i) for i in boxes.tracker_id]
        self.count(boxes.data.get("class_name", []), ids)

    def count(self, class_names, track_ids: list[int | None] | None = None) -> None:
        """One frame's detections (also used to re-count the frames a resumed run kept)."""
        self.frames += 1
        self.per_class.update(str(n) for n in class_names)
        self.tracks.update(i for i in track_ids or () if i is not None)


def save_snapshot(annotated: np.ndarray, result: Result, folder: Path, stem: str) -> tuple[Path, Path]:
    """``STEM.png`` (the annotated frame) and ``STEM.json`` (its detections), each written whole."""
    folder.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", annotated)
    if not ok:
        raise RuntimeFailure(f"cannot encode snapshot {stem}.png")
    image_out, json_out = AtomicPath(folder / f"{stem}.png"), AtomicPath(folder / f"{stem}.json")
    image_out.part.write_bytes(np.asarray(png).tobytes())
    record = {"model": result.model_id, **frame_line(result)}
    json_out.part.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return image_out.finish(True), json_out.finish(True)  # type: ignore[return-value]
