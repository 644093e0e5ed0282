"""The annotate job: run the detector over sources and write annotated media plus a JSONL record.

Front ends (CLI now, the GUI's batch dialog later) call ``annotate_source`` per input; it owns no
detection logic, only the choice of sinks and the bookkeeping of one run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from yolo_app.engine import record
from yolo_app.engine.checkpoint import (SEGMENT_FRAMES, Checkpointer, SegmentedVideoSink, drop_segments_from,
                                         load_state, tracker_state)
from yolo_app.engine.cpu import LEDGER, CpuReport
from yolo_app.engine.inference import Detector
from yolo_app.engine.pipeline import Branch, Pipeline
from yolo_app.engine.readers import FrameReader, open_reader
from yolo_app.engine.sinks import ImageSink, JsonlSink, Sink, TallySink, VideoSink, partial_path
from yolo_app.engine.sources import SourceSpec
from yolo_app.engine.stats import PipelineStats
from yolo_app.engine.supervisor import SourceEvent, SourceState, SourceSupervisor
from yolo_app.engine.tracking import Tracker
from yolo_app.engine.types import ChannelPolicy, SourceInfo, SourceKind
from yolo_app.errors import UserError

if TYPE_CHECKING:
    from yolo_app.zoo.classifier import ClassifierStage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnnotateOptions:
    out_dir: Path
    video: bool = True  # False: the JSONL record only
    max_frames: int | None = None
    codec: str = "auto"
    policy: ChannelPolicy | None = None  # None: by source kind (live -> latest, files -> all)
    batch: int = 1
    track: bool = False  # ByteTrack ids, a fresh tracker per source
    resume: bool = False  # continue an interrupted run from its checkpoint; skip finished sources
    top_k: int = 3  # each box's best classes in the JSONL, with the head's scores; 0: none
    classify: ClassifierStage | None = None  # the second stage: a classifier on each detection's crop
    cpu_report: bool = False  # count where the CPU time goes (engine/cpu.py) into the report

    def classify_info(self) -> dict | None:
        return self.classify.describe() if self.classify is not None else None


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
    resumed_at: int = 0  # frames an interrupted run had done before this one continued it
    skipped: bool = False  # --resume found the outputs complete already
    warnings: list[str] = field(default_factory=list)
    first_result_s: float | None = None  # the process's age when this source's first result arrived
    cpu: CpuReport | None = None  # with AnnotateOptions.cpu_report

    @property
    def fps(self) -> float:
        return (self.frames - self.resumed_at) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        if self.skipped:
            return f"{self.spec.name}: already complete, skipped (--resume) -> {self.outputs[0].parent}"
        classes = ", ".join(f"{name} {n}" for name, n in self.per_class.most_common()) or "no detections"
        dropped = f", {self.dropped} dropped" if self.dropped else ""
        resumed = f", resumed at frame {self.resumed_at}" if self.resumed_at else ""
        if self.tracks is not None:
            classes += f"; {self.tracks} tracks"
        where = ", ".join(str(p) for p in self.outputs)
        state = "" if self.complete else " (partial)"
        return (f"{self.spec.name}{state}: {self.frames} frames in {self.seconds:.1f} s "
                f"({self.fps:.1f} FPS{dropped}{resumed}); {classes} -> {where}")


@dataclass
class ResumePoint:
    """Where a run over one file starts: from scratch, or after the last checkpoint of an interrupted one."""

    frames_done: int = 0
    last_pts: float | None = None
    jsonl_offset: int | None = None
    tracker: bytes | None = None


@dataclass(frozen=True)
class FrameRange:
    """Frames [start, stop) of a video file annotated on their own: one task of a distributed run
    (``yolo_app.distributed``). The reader continues right after ``after_pts``, the time of frame
    ``start - 1``, exactly as a resumed run does (None when ``start`` is 0)."""

    start: int
    stop: int
    after_pts: float | None = None


def record_header(info: SourceInfo, detector: Detector, options: AnnotateOptions) -> dict:
    return record.header(info, detector, track=options.track, top_k=options.top_k, classify=options.classify_info())


def output_paths(spec: SourceSpec, options: AnnotateOptions) -> tuple[Path, Path]:
    return options.out_dir / f"{spec.name}.annotated.mp4", options.out_dir / f"{spec.name}.detections.jsonl"


def resume_dir(spec: SourceSpec, options: AnnotateOptions) -> Path:
    return options.out_dir / f"{spec.name}.resume"


def resumable(info: SourceInfo, options: AnnotateOptions) -> bool:
    """Checkpoints need every frame in order from a source that can be read again: files, not live."""
    return not info.live and info.kind is not SourceKind.IMAGE and options.policy in (None, ChannelPolicy.ALL)


def fingerprint(spec: SourceSpec, detector: Detector, options: AnnotateOptions) -> dict:
    """What must not change between an interrupted run and its resumption."""
    files = spec.paths or (Path(spec.uri),)
    source = hashlib.sha1()
    for path in files:
        st = path.stat()
        source.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    weights = detector.model.path.stat()
    model = f"{detector.model.path.resolve()}|{weights.st_size}|{weights.st_mtime_ns}"
    return {
        "source": source.hexdigest(), "model": model,
        **dataclasses.asdict(detector.settings), "track": options.track, "video": options.video,
        "codec": options.codec, "top_k": options.top_k, "backend": detector.model.backend,
        "precision": detector.model.precision, "head": detector.model.head,
        "classify": options.classify_info(),
        "segment_frames": SEGMENT_FRAMES,
    }


def find_resume_point(spec: SourceSpec, detector: Detector, options: AnnotateOptions,
                      header: dict) -> ResumePoint | None:
    """Read the checkpoint of an interrupted run (with --resume) and put its files back in place.
    Without --resume an old checkpoint is discarded. None: the outputs are complete already, made
    with the same model and settings (``header``: this run's record header)."""
    work = resume_dir(spec, options)
    state = load_state(work)
    video_path, jsonl_path = output_paths(spec, options)
    if not options.resume:
        if state is not None:
            log.warning("%s: starting over; the interrupted run's %d frames are discarded (add --resume to "
                        "continue it)", spec.name, state["frames_done"])
        shutil.rmtree(work, ignore_errors=True)
        return ResumePoint()
    if state is None:
        done = jsonl_path.is_file() and (video_path.is_file() or not options.video or spec.kind is SourceKind.IMAGES)
        if done and not work.exists() and record.made_alike(jsonl_path, header):
            return None
        shutil.rmtree(work, ignore_errors=True)
        return ResumePoint()
    changed = [k for k, v in fingerprint(spec, detector, options).items() if state["fingerprint"].get(k) != v]
    if changed:
        raise UserError(f"cannot resume {spec.name}: {', '.join(changed)} differ from the interrupted run "
                        f"(run without --resume to start over)")
    jsonl = state["sinks"]["jsonl"]
    part = jsonl_path.with_name(jsonl_path.name + ".part")
    if not part.exists() and partial_path(jsonl_path).exists():  # interrupted by Ctrl-C or a failure
        os.replace(partial_path(jsonl_path), part)
    if not part.exists() or part.stat().st_size < jsonl["offset"]:
        raise UserError(f"cannot resume {spec.name}: {part.name} is missing or shorter than its checkpoint "
                        f"(run without --resume to start over)")
    drop_segments_from(work / "video", state["frames_done"])
    return ResumePoint(state["frames_done"], jsonl["last_pts"], jsonl["offset"], tracker_state(state))


def build_sinks(spec: SourceSpec, info: SourceInfo, options: AnnotateOptions, header: dict,
                checkpointer: Checkpointer | None = None, start: ResumePoint | None = None) -> list[Sink]:
    video_path, jsonl_path = output_paths(spec, options)
    sinks: list[Sink] = []
    try:
        if options.video:
            if info.kind in (SourceKind.IMAGE, SourceKind.IMAGES):
                sinks.append(ImageSink(options.out_dir, stem=spec.name if info.kind is SourceKind.IMAGE else None))
            elif checkpointer is not None:
                audio = info.uri if info.kind is SourceKind.VIDEO else None
                sinks.append(SegmentedVideoSink(video_path, info, checkpointer, options.codec, audio))
            else:
                sinks.append(VideoSink(video_path, info, codec=options.codec))
        sinks.append(JsonlSink(jsonl_path, header, checkpointer, start.jsonl_offset if start else None,
                               options.top_k))
    except OSError as exc:
        for sink in sinks:
            sink.close(False)
        raise UserError(f"cannot write to {options.out_dir}: {exc.strerror or exc}") from None
    return sinks


def annotate_source(spec: SourceSpec, detector: Detector, options: AnnotateOptions,
                    progress: Callable[[PipelineStats, SourceInfo], None] | None = None,
                    reader: FrameReader | None = None,
                    started: Callable[[Pipeline], None] | None = None,
                    frames: FrameRange | None = None) -> AnnotateReport:
    """Annotate one source (``reader``: already opened, else opened here). Raises UserError or
    RuntimeFailure; KeyboardInterrupt once partial outputs are safely on disk (file sources). For
    live sources Ctrl-C ends the recording normally. ``started`` receives the running pipeline
    (a front end's handle to stop it). ``frames``: only that range of a video file, as a fresh run
    (its outputs hold those frames, numbered as in the whole file)."""
    report = AnnotateReport(spec)
    reader = reader or open_reader(spec)
    info = reader.info
    if info.live:  # a camera or stream that drops is reopened; the record goes on, the log says what happened
        reader = SourceSupervisor(spec, reader, on_event=_log_source_event)
    try:
        header = record_header(info, detector, options)
        checkpointer, start = _plan_checkpoints(spec, info, detector, options, header)
        if frames is not None:
            start = ResumePoint(frames.start, frames.after_pts)
        if start is None:
            reader.close()
            report.skipped = report.complete = True
            report.outputs = [p for p in output_paths(spec, options) if p.exists()]
            return report
        if start.frames_done:
            reader.continue_after(start.frames_done, start.last_pts)
        tally = TallySink()  # the summary's counts
        sinks = [*build_sinks(spec, info, options, header, checkpointer, start), tally]
    except BaseException:
        reader.close()
        raise
    tracker = Tracker(info.fps, snapshot_every=checkpointer.every if checkpointer else None) if options.track else None
    if checkpointer is not None:
        checkpointer.tracker = tracker
    if tracker is not None and start.tracker:
        tracker.restore(start.tracker)
    if start.jsonl_offset is not None:
        _recount(tally, output_paths(spec, options)[1], start.jsonl_offset)
    report.resumed_at = start.frames_done if frames is None else 0
    limit = options.max_frames if frames is None else frames.stop
    remaining = None if limit is None else max(0, limit - start.frames_done)
    branch = Branch(detector, sinks, tracker, classifier=options.classify)
    pipeline = Pipeline(reader, branches=[branch], source_id=spec.name,
                        policy=options.policy, max_frames=remaining, first_index=start.frames_done,
                        batch=options.batch)
    if started is not None:
        started(pipeline)
    began = time.monotonic()
    if options.cpu_report:  # exports and compiling (the first time) are start-up, not the run's frames
        detector.warmup(info.height, info.width, batch=options.batch)
        LEDGER.start()
    try:
        pipeline.run(progress=(lambda s: progress(s, info)) if progress else None,
                     finish_on_interrupt=info.live)
    except KeyboardInterrupt:
        pipeline.wait(10.0)  # let the sinks finish their partial files before we exit
        raise
    finally:
        if options.cpu_report:
            LEDGER.stop()
            report.cpu = LEDGER.report(tally.frames - report.resumed_at)
        stats = pipeline.stats()
        report.frames, report.dropped = tally.frames, stats.dropped
        report.seconds = time.monotonic() - began
        report.per_class, report.first_result_s = tally.per_class, tally.first_result_s
        report.tracks = len(tally.tracks) if options.track else None
        report.complete = pipeline.completed
        report.outputs = [path for sink in sinks for path in sink.outputs(report.complete)]
        report.warnings = [warning for sink in sinks for warning in sink.warnings()]
        if checkpointer is not None and (report.complete or checkpointer.frames_done == 0):
            checkpointer.discard()  # done, or stopped before the first checkpoint: nothing to resume
    return report


def _plan_checkpoints(spec: SourceSpec, info: SourceInfo, detector: Detector, options: AnnotateOptions,
                      header: dict) -> tuple[Checkpointer | None, ResumePoint | None]:
    if not resumable(info, options):
        if options.resume:
            log.warning("%s: --resume applies to files; this source starts from the beginning", spec.name)
        return None, ResumePoint()
    start = find_resume_point(spec, detector, options, header)
    if start is None:
        return None, None
    video_sink = options.video and info.kind is not SourceKind.IMAGES
    parties = {"jsonl", "video"} if video_sink else {"jsonl"}
    return Checkpointer(resume_dir(spec, options), fingerprint(spec, detector, options), parties), start


def _log_source_event(event: SourceEvent) -> None:
    if event.state in (SourceState.RECONNECTING, SourceState.OFFLINE) or event.outage_s is not None:
        log.warning(event.describe())


def _recount(tally: TallySink, jsonl_path: Path, offset: int | None) -> None:
    """The summary covers the whole file: count the frames the interrupted run kept."""
    part = jsonl_path.with_name(jsonl_path.name + ".part")
    with part.open("rb") as fh:
        kept = fh.read(offset)
    for names, ids in record.labels_in(kept):
        tally.count(names, ids)
