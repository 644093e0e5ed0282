"""Checkpoints that let a run over a file survive a crash or ``kill -9``.

Every ``SEGMENT_FRAMES`` frames each checkpointed sink makes its output durable up to that frame
and reports it: the JSONL is flushed and fsynced (its length is the resume point) and the video
closes a segment file. When every sink has reported the same frame, ``checkpoint.json`` is replaced
atomically with that frame, the sinks' positions and the tracker's state at that frame. A resumed
run truncates the record to the checkpoint, deletes later segments, seeks the source right after
the last frame done and carries on; at the end the segments are joined (with the source's audio)
into the final video. Because each segment is encoded from scratch in both the interrupted and the
uninterrupted run, the joined video is the same either way, and the JSONL is the same line for line.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from yolo_app.engine.remux import join_segments
from yolo_app.engine.render import FrameRenderer
from yolo_app.engine.sinks import AtomicPath, FileSink, VideoSink
from yolo_app.engine.tracking import Tracker
from yolo_app.engine.types import Result, SourceInfo

SEGMENT_FRAMES = 250  # x264's default GOP: a segment boundary costs no extra keyframe
STATE_FILE = "checkpoint.json"
STATE_VERSION = 1


class Checkpointer:
    """Collects the sinks' reports and writes the checkpoint once all of them reached a frame."""

    def __init__(self, work_dir: Path, fingerprint: dict, parties: set[str], tracker: Tracker | None = None,
                 every: int = SEGMENT_FRAMES) -> None:
        self.work_dir = work_dir
        self.fingerprint = fingerprint
        self.parties = parties
        self.tracker = tracker
        self.every = every
        self.frames_done = 0
        self._pending: dict[int, dict[str, dict]] = {}
        self._lock = threading.Lock()
        work_dir.mkdir(parents=True, exist_ok=True)

    def due(self, index: int) -> bool:
        """Whether frame ``index`` is the last one before a checkpoint."""
        return (index + 1) % self.every == 0

    def reached(self, party: str, frames_done: int, data: dict[str, Any]) -> None:
        with self._lock:
            reports = self._pending.setdefault(frames_done, {})
            reports[party] = data
            if set(reports) < self.parties:
                return
            del self._pending[frames_done]
            tracker_state = self.tracker.snapshots.pop(frames_done, None) if self.tracker else None
            self._write({"version": STATE_VERSION, "fingerprint": self.fingerprint, "frames_done": frames_done,
                         "sinks": reports,
                         "tracker": base64.b64encode(tracker_state).decode() if tracker_state else None})
            self.frames_done = frames_done

    def _write(self, state: dict) -> None:
        path = self.work_dir / STATE_FILE
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # the old checkpoint stays valid until the new one is whole

    def discard(self) -> None:
        """The run completed: its resume state is of no more use."""
        shutil.rmtree(self.work_dir, ignore_errors=True)


def load_state(work_dir: Path) -> dict | None:
    """The last checkpoint of an interrupted run in ``work_dir``, or None when there is none usable."""
    try:
        state = json.loads((work_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or "frames_done" not in state:
        return None
    return state


def tracker_state(state: dict) -> bytes | None:
    encoded = state.get("tracker")
    return base64.b64decode(encoded) if encoded else None


class SegmentedVideoSink(FileSink):
    """The annotated video as segments of ``SEGMENT_FRAMES`` frames in ``work_dir/video``, joined into
    ``path`` (with the source's audio) when the run ends. An interrupted run still gets a playable
    ``.partial.mp4``; its segments stay for ``--resume``."""

    name = "video"

    def __init__(self, path: Path, info: SourceInfo, checkpointer: Checkpointer, codec: str = "auto",
                 audio_source: str | None = None) -> None:
        self.path = path
        self.output = AtomicPath(path)
        self.info = info
        self.codec = codec
        self.checkpointer = checkpointer
        self.audio_source = audio_source
        self.segments_dir = checkpointer.work_dir / "video"
        self.segments_dir.mkdir(parents=True, exist_ok=True)
        self.warning: str | None = None  # why the audio was left out, when it was
        self._segment: VideoSink | None = None
        # Styled once for every segment, and made here: its annotators' import is start-up, not the run's frames.
        self._renderer = FrameRenderer(info.width, info.height)

    def write(self, result: Result) -> None:
        frame = result.frame
        if self._segment is None:
            self._segment = VideoSink(self.segments_dir / f"{frame.index:08d}.mp4", self.info, codec=self.codec,
                                      renderer=self._renderer)
        self._segment.write(result)
        if self.checkpointer.due(frame.index):
            self._close_segment()
            self.checkpointer.reached(self.name, frame.index + 1, {"last_pts": frame.pts_s})

    def _close_segment(self) -> None:
        segment, self._segment = self._segment, None
        if segment is not None:
            segment.close(True)
            with segment.path.open("rb") as fh:
                os.fsync(fh.fileno())

    def close(self, complete: bool) -> None:
        self._close_segment()  # a segment past the last checkpoint is still whole: the partial video shows it
        segments = segment_files(self.segments_dir)
        if segments:
            self.warning = join_segments(segments, self.output.part, self.audio_source)
        self.output.finish(complete, empty=not segments)

    def warnings(self) -> list[str]:
        return [self.warning] if self.warning else []


def segment_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9]*.mp4"))


def drop_segments_from(folder: Path, frames_done: int) -> None:
    """Delete the segments a resumed run will encode again (and any unfinished ``.part``)."""
    for path in folder.glob("*.mp4*"):
        start = path.name.split(".", 1)[0]
        if not start.isdigit() or int(start) >= frames_done or path.name.endswith(".part"):
            path.unlink()
