"""The annotate job: run the detector over sources and write annotated media plus a JSONL record.

Front ends (CLI now, the GUI's batch dialog later) call ``annotate_source`` per input; it owns no
detection logic, only the choice of sinks and the bookkeeping of one run.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from yolo_app.engine.inference import Detector
from yolo_app.engine.pipeline import Pipeline
from yolo_app.engine.readers import FrameReader, open_reader
from yolo_app.engine.sinks import ImageSink, JsonlSink, Sink, TallySink, VideoSink, partial_path
from yolo_app.engine.sources import SourceSpec
from yolo_app.engine.stats import PipelineStats
from yolo_app.engine.tracking import Tracker
from yolo_app.engine.types import FramePolicy, SourceInfo, SourceKind
from yolo_app.errors import UserError
from yolo_app.export.record import RECORD_TAG, RECORD_VERSION


@dataclass(frozen=True)
class AnnotateOptions:
    out_dir: Path
    video: bool = True  # False: the JSONL record only
    max_frames: int | None = None
    codec: str = "auto"
    policy: FramePolicy | None = None  # None: by source kind (live -> latest, files -> all)
    batch: int = 1
    track: bool = False  # ByteTrack ids, a fresh tracker per source


@dataclass
class AnnotateReport:
    spec: SourceSpec
    frames: int = 0
    dropped: int = 0
    seconds: float = 0.0
    per_class: Counter = field(default_factory=Counter)
    outputs: list[Path] = field(default_factory=list)
    complete: bool = False
    tracks: int | None = None  # distinct track ids, when tracking

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        classes = ", ".join(f"{name} {n}" for name, n in self.per_class.most_common()) or "no detections"
        dropped = f", {self.dropped} dropped" if self.dropped else ""
        if self.tracks is not None:
            classes += f"; {self.tracks} tracks"
        where = ", ".join(str(p) for p in self.outputs)
        state = "" if self.complete else " (partial)"
        return (f"{self.spec.name}{state}: {self.frames} frames in {self.seconds:.1f} s "
                f"({self.fps:.1f} FPS{dropped}); {classes} -> {where}")


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


def record_header(info: SourceInfo, detector: Detector, options: AnnotateOptions) -> dict:
    """The JSONL's first line: enough to make every export later without the model or the run."""
    model, settings = detector.model, detector.settings
    return {
        "record": RECORD_TAG, "version": RECORD_VERSION,
        "source": info.uri if info.live else str(Path(info.uri).resolve()), "kind": info.kind.value, "live": info.live,
        "width": info.width, "height": info.height,
        "fps": None if info.fps is None else float(info.fps), "frame_count": info.frame_count,
        "model": model.model_id, "task": model.task, "names": {str(k): v for k, v in model.names.items()},
        "settings": dataclasses.asdict(settings), "track": options.track,
    }


def build_sinks(spec: SourceSpec, info: SourceInfo, options: AnnotateOptions, header: dict) -> list[Sink]:
    out = options.out_dir
    sinks: list[Sink] = []
    if options.video:
        if info.kind in (SourceKind.IMAGE, SourceKind.IMAGES):
            sinks.append(ImageSink(out, stem=spec.name if info.kind is SourceKind.IMAGE else None))
        else:
            sinks.append(VideoSink(out / f"{spec.name}.annotated.mp4", info, codec=options.codec))
    try:
        sinks.append(JsonlSink(out / f"{spec.name}.detections.jsonl", header))
    except OSError as exc:
        for sink in sinks:
            sink.close(False)
        raise UserError(f"cannot write to {out}: {exc.strerror or exc}") from None
    sinks.append(TallySink())
    return sinks


def annotate_source(spec: SourceSpec, detector: Detector, options: AnnotateOptions,
                    progress: Callable[[PipelineStats, SourceInfo], None] | None = None,
                    reader: FrameReader | None = None) -> AnnotateReport:
    """Annotate one source (``reader``: already opened, else opened here). Raises UserError or
    RuntimeFailure; KeyboardInterrupt once partial outputs are safely on disk (file sources). For
    live sources Ctrl-C ends the recording normally."""
    report = AnnotateReport(spec)
    reader = reader or open_reader(spec)
    info = reader.info
    try:
        sinks = build_sinks(spec, info, options, record_header(info, detector, options))
    except BaseException:
        reader.close()
        raise
    tracker = Tracker(info.fps) if options.track else None
    pipeline = Pipeline(reader, detector, sinks, tracker=tracker, source_id=spec.name, policy=options.policy,
                        max_frames=options.max_frames, batch=options.batch)
    start = time.monotonic()
    try:
        pipeline.run(progress=(lambda s: progress(s, info)) if progress else None,
                     finish_on_interrupt=info.live)
    except KeyboardInterrupt:
        pipeline.wait(10.0)  # let the sinks finish their partial files before we exit
        raise
    finally:
        stats = pipeline.stats()
        tally = next(s for s in sinks if isinstance(s, TallySink))
        report.frames, report.dropped = tally.frames, stats.dropped
        report.seconds = time.monotonic() - start
        report.per_class = tally.per_class
        report.tracks = len(tally.tracks) if options.track else None
        report.complete = pipeline.completed
        report.outputs = _outputs(sinks, report.complete)
    return report


def _outputs(sinks: list[Sink], complete: bool) -> list[Path]:
    paths: list[Path] = []
    for sink in sinks:
        if isinstance(sink, (VideoSink, JsonlSink)):
            paths.append(sink.path if complete else partial_path(sink.path))
        elif isinstance(sink, ImageSink):
            paths.extend(sink.written[:1] if len(sink.written) == 1 else [sink.out_dir])
    return paths


class ProgressBar:
    """A terminal progress bar with FPS and ETA (tqdm), shown only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None, total_cap: int | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total_cap = total_cap  # --max-frames
        self._bar = None

    def __call__(self, stats: PipelineStats, info: SourceInfo) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            total = info.frame_count
            if self.total_cap is not None:
                total = min(total, self.total_cap) if total else self.total_cap
            self._bar = tqdm(total=total, unit="frame", desc=Path(info.uri).name[:30],
                             dynamic_ncols=True, leave=False, file=sys.stderr)
        self._bar.n = stats.written
        postfix = {"fps": f"{stats.inference_fps:.1f}"}
        if stats.dropped:
            postfix["dropped"] = stats.dropped
        if stats.state != "running":
            postfix["source"] = stats.state
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
