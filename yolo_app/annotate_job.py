"""Annotating many sources in one job: the unit of work the CLI and the GUI's "Annotate videos…"
dialog both run.

Sources are annotated one after another with one detector (files are processed losslessly, so
they would only compete for the same cores). The job reports progress over all files with an ETA,
a report per file, and exports made from each finished record; a file that fails is reported and
skipped without stopping the others; ``cancel()`` (any thread) stops the current file at once,
leaving it resumable.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import av

from yolo_app.annotate import AnnotateOptions, AnnotateReport, annotate_source, output_paths
from yolo_app.engine.inference import Detector
from yolo_app.engine.pipeline import Pipeline
from yolo_app.engine.readers import FrameReader
from yolo_app.engine.sources import SourceSpec
from yolo_app.engine.stats import PipelineStats
from yolo_app.engine.types import SourceInfo, SourceKind
from yolo_app.errors import YoloAppError
from yolo_app.export import ExportOptions, export_record


@dataclass(frozen=True)
class JobProgress:
    """A snapshot for progress displays: the current file and the whole job."""

    file_number: int  # 1-based
    files: int
    name: str
    file_done: int
    file_total: int | None
    done: int  # frames over all files, including skipped and failed files' share when known
    total: int | None  # None while any file's length is unknown
    fps: float  # this job's frames per second so far
    eta_s: float | None


@dataclass
class FileOutcome:
    spec: SourceSpec
    report: AnnotateReport | None = None
    exported: list[Path] = field(default_factory=list)
    error: str | None = None  # one line, when the file failed and was skipped
    exit_code: int = 0


@dataclass
class JobResult:
    outcomes: list[FileOutcome]
    cancelled: bool = False

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def complete(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.error is None and o.report is not None and o.report.complete]

    @property
    def exit_code(self) -> int:
        return max((o.exit_code for o in self.outcomes), default=0)


def probe_frame_count(spec: SourceSpec) -> int | None:
    """Frames in a file from its index, cheaply (no decoding); None when it does not say."""
    if spec.kind in (SourceKind.IMAGE, SourceKind.IMAGES):
        return len(spec.paths)
    if spec.kind not in (SourceKind.VIDEO, SourceKind.DEMO):
        return None
    try:
        with av.open(spec.uri) as container:
            return container.streams.video[0].frames or None if container.streams.video else None
    except av.FFmpegError:
        return None  # the annotate step reports why


class AnnotateJob:
    def __init__(self, specs: list[SourceSpec], detector: Detector, options: AnnotateOptions,
                 exports: list[str] | None = None, export_options: ExportOptions | None = None, *,
                 on_progress: Callable[[JobProgress], None] | None = None,
                 on_outcome: Callable[[FileOutcome], None] | None = None,
                 first_reader: FrameReader | None = None) -> None:
        self.specs = specs
        self.detector = detector
        self.options = options
        self.exports = exports or []
        self.export_options = export_options or ExportOptions()
        self.on_progress = on_progress
        self.on_outcome = on_outcome
        self.first_reader = first_reader  # already opened by the caller (fail-fast checks), used for specs[0]
        self._cancel = threading.Event()
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()
        # Progress over the whole job: when it started, frames of the files before the current one,
        # and frames done by earlier runs (resumed or skipped), which do not count towards the rate.
        self._started = time.monotonic()
        self._done_before = 0
        self._earlier = 0

    def cancel(self) -> None:
        """Stop now: the current file's outputs are finished as partial, resumable with --resume."""
        self._cancel.set()
        with self._lock:
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> JobResult:
        """Annotate every source in turn (blocking; a GUI runs it on a worker thread)."""
        lengths = [probe_frame_count(s) for s in self.specs]
        if self.options.max_frames is not None:
            lengths = [self.options.max_frames if n is None else min(n, self.options.max_frames) for n in lengths]
        total = None if None in lengths else sum(lengths)  # type: ignore[arg-type]
        self._started, self._done_before, self._earlier = time.monotonic(), 0, 0
        result = JobResult([])
        try:
            for i, spec in enumerate(self.specs):
                if self.cancelled:
                    break
                outcome = self._annotate_one(spec, self.first_reader if i == 0 else None,
                                             lambda stats, info, i=i: self._progress(i, lengths[i], total, stats))
                result.outcomes.append(outcome)
                if self.on_outcome is not None:
                    self.on_outcome(outcome)
                frames = lengths[i] or (outcome.report.frames if outcome.report else 0)
                if outcome.report is not None and outcome.report.skipped:
                    self._earlier += frames
                self._done_before += frames
        finally:
            self.detector.stop_streams()  # no thread of the job outlives it
        result.cancelled = self.cancelled
        return result

    def _annotate_one(self, spec: SourceSpec, reader: FrameReader | None,
                      progress: Callable[[PipelineStats, SourceInfo], None]) -> FileOutcome:
        outcome = FileOutcome(spec)
        try:
            outcome.report = annotate_source(spec, self.detector, self.options, progress=progress, reader=reader,
                                             started=self._attach)
        except YoloAppError as exc:
            outcome.error, outcome.exit_code = str(exc), exc.exit_code
            return outcome
        finally:
            with self._lock:
                self._pipeline = None
        if self.exports and outcome.report.complete:
            try:
                outcome.exported = export_record(output_paths(spec, self.options)[1], self.exports,
                                                 self.options.out_dir, self.export_options)
            except YoloAppError as exc:
                outcome.error, outcome.exit_code = f"export failed: {exc}", exc.exit_code
        return outcome

    def _attach(self, pipeline: Pipeline) -> None:
        with self._lock:
            self._pipeline = pipeline
        self._earlier += pipeline.first_index  # a resumed file's frames before its checkpoint
        if self.cancelled:
            pipeline.stop()

    def _progress(self, i: int, length: int | None, total: int | None, stats: PipelineStats) -> None:
        with self._lock:
            pipeline = self._pipeline
        if self.on_progress is None or pipeline is None:
            return
        file_done = pipeline.first_index + stats.written
        done = self._done_before + file_done
        elapsed = time.monotonic() - self._started
        fps = (done - self._earlier) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / fps if total is not None and fps > 0 else None
        self.on_progress(JobProgress(i + 1, len(self.specs), self.specs[i].name, file_done, length, done, total,
                                     fps, eta))
