"""Wiring: capture -> inference -> one thread per sink, with a clean stop and errors that surface.

    reader --CaptureThread--> a frames channel per branch (LATEST slot or bounded ALL queue)
           --InferenceWorker (one per branch)--> a channel per sink (the sink's policy) --SinkRunner--> sink

A branch is one detector and its sinks; compare mode runs two branches on the same captured frames.
The first exception in any thread cancels every channel (waking whoever waits), stops every thread,
and is re-raised by ``run()`` in the caller. ``stop()`` returns within its timeout, 2 s by default.
"""

from __future__ import annotations

import logging
import time
from dataclasses import KW_ONLY, dataclass
from typing import Callable, Sequence

from yolo_app.engine.capture import CaptureThread, Playback
from yolo_app.engine.channel import Channel, ChannelClosed
from yolo_app.engine.classify import ClassifyWorker, Stage
from yolo_app.engine.inference import Detector, FrameDetector, InferenceWorker
from yolo_app.engine.readers import FrameReader
from yolo_app.engine.sinks import Sink
from yolo_app.engine.sources import SourceSpec
from yolo_app.engine.stats import PipelineStats, RateMeter
from yolo_app.engine.supervisor import SourceSupervisor
from yolo_app.engine.tracking import Tracker
from yolo_app.engine.types import Frame, ChannelPolicy, Result
from yolo_app.engine.worker import Worker
from yolo_app.errors import RuntimeFailure, YoloAppError, describe

log = logging.getLogger(__name__)

QUEUE_SIZE = 8  # frames in flight per lossless hand-off: enough to absorb jitter, flat memory


@dataclass
class Branch:
    """One detector, an optional tracker after it, an optional second-stage classifier (see
    engine/classify.py), and the sinks its results go to."""

    detector: FrameDetector
    sinks: Sequence[Sink]
    tracker: Tracker | None = None
    _: KW_ONLY
    gate: Callable[[Frame], bool] | None = None  # per frame: run the detector? (motion gating)
    classifier: Stage | None = None
    refine: Callable[[Result], Result] | None = None  # after tracking, on the inference thread, in frame order


class SinkRunner(Worker):
    """Feeds one sink from its channel; closes it complete only after a clean end of stream."""

    def __init__(self, sink: Sink, on_error: Callable[[BaseException], None]) -> None:
        super().__init__(f"sink:{sink.name}", on_error)
        self.sink = sink
        capacity = 1 if sink.policy is ChannelPolicy.LATEST else QUEUE_SIZE
        self.channel: Channel[Result] = Channel(capacity, sink.policy, name=sink.name)
        self.written = 0
        self.rate = RateMeter()

    def run(self) -> None:
        complete = False
        try:
            while True:
                try:
                    result = self.channel.get()
                except ChannelClosed:
                    complete = not self.channel.cancelled
                    return
                self.sink.write(result)
                self.written += 1
                self.rate.tick()
        finally:
            self.sink.close(complete)


class Pipeline:
    def __init__(
        self,
        reader: FrameReader,
        detector: Detector | None = None,
        sinks: Sequence[Sink] = (),
        *,
        tracker: Tracker | None = None,
        branches: Sequence[Branch] | None = None,
        source_id: str = "source",
        policy: ChannelPolicy | None = None,
        max_frames: int | None = None,
        first_index: int = 0,
        playback: Playback | None = None,
        batch: int = 1,
    ) -> None:
        if branches is None:
            if detector is None:
                raise ValueError("give a detector (and its sinks) or branches")
            branches = [Branch(detector, sinks, tracker)]
        # Every pipeline reads through a supervisor: the front end's own (a live source it reconnects), else
        # one that only reports the source's state (a drop then ends the run with the reason).
        self.source = reader if isinstance(reader, SourceSupervisor) else SourceSupervisor(
            SourceSpec(reader.info.kind, reader.info.uri, source_id), reader, reconnect=False)
        self.info = reader.info
        self.first_index = first_index
        self.policy = policy or self.info.default_policy
        self.error: BaseException | None = None
        capacity = 1 if self.policy is ChannelPolicy.LATEST else QUEUE_SIZE
        self.frame_channels: list[Channel[Frame]] = [
            Channel(capacity, self.policy, name=f"frames{i}") for i in range(len(branches))]
        self.sink_runners: list[list[SinkRunner]] = [[SinkRunner(s, self._fail) for s in b.sinks] for b in branches]
        self.classifiers: list[ClassifyWorker | None] = [
            None if b.classifier is None else ClassifyWorker(b.classifier, self.policy, [r.channel for r in runners],
                                                             self._fail, name=f"classify{i}")
            for i, (b, runners) in enumerate(zip(branches, self.sink_runners))]
        self.inference = [
            InferenceWorker(b.detector, channel, self._inference_outputs(runners, c),
                            warmup_hw=(self.info.height, self.info.width), batch=batch, name=f"inference{i}",
                            tracker=b.tracker, gate=b.gate, refine=b.refine, on_error=self._fail,
                            post=c.attach if c is not None and not c.lossless else None)
            for i, (b, channel, runners, c) in enumerate(zip(branches, self.frame_channels, self.sink_runners,
                                                             self.classifiers))
        ]
        # Capture starts reading once every model is warm: the start of a file is not played (or a live
        # source's first seconds dropped) while a backend compiles.
        self.capture = CaptureThread(self.source, self.frame_channels, source_id=source_id, max_frames=max_frames,
                                     first_index=first_index, playback=playback,
                                     wait_for=[w.ready for w in self.inference], on_error=self._fail)
        self._workers: list[Worker] = [self.capture, *self.inference, *(c for c in self.classifiers if c),
                                       *(r for rs in self.sink_runners for r in rs)]
        self._started = False
        self.stopped_by_user = False

    @staticmethod
    def _inference_outputs(runners: list[SinkRunner], classifier: ClassifyWorker | None) -> list[Channel[Result]]:
        """Files: inference -> classifier -> sinks. Live: inference -> sinks, and a latest slot to the classifier."""
        if classifier is None:
            return [r.channel for r in runners]
        return [classifier.inp] if classifier.lossless else [*(r.channel for r in runners), classifier.inp]

    @property
    def playback(self) -> Playback:
        return self.capture.playback

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            raise RuntimeError("a pipeline runs once")
        self._started = True
        for worker in reversed(self._workers):  # consumers first, so nothing waits on a missing reader
            worker.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every thread has ended; True when they have."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not worker.join(remaining):
                return False
        return True

    def stop(self, timeout: float = 2.0) -> bool:
        """Cancel everything now; outputs are finished as partial. True when all threads ended."""
        self.stopped_by_user = True
        self._cancel()
        return self.wait(timeout)

    def finish(self) -> None:
        """End gracefully: capture stops, what was captured flows through, outputs are complete."""
        self.capture.stop()

    def run(self, progress: Callable[[PipelineStats], None] | None = None, interval: float = 0.25,
            finish_on_interrupt: bool = False) -> None:
        """Start, wait for the end while reporting progress, and re-raise the first failure.

        Ctrl-C stops at once (outputs partial); with ``finish_on_interrupt`` (live sources, where
        Ctrl-C is how a recording ends) the first Ctrl-C finishes gracefully and a second one stops.
        A Ctrl-C once every frame has been read and detected also finishes: only the sinks' last frames
        are left, and stopping then would leave one output complete (the JSONL) beside another partial.
        """
        self.start()
        try:
            try:
                self._wait_reporting(progress, interval)
            except KeyboardInterrupt:
                if not (finish_on_interrupt or self._only_sinks_left()):
                    raise
                self.finish()
                self._wait_reporting(progress, interval)
        except KeyboardInterrupt:
            self.stop()
            raise
        self.raise_if_failed()

    def _wait_reporting(self, progress: Callable[[PipelineStats], None] | None, interval: float) -> None:
        while not self.wait(interval):
            if progress is not None:
                progress(self.stats())
        if progress is not None:
            progress(self.stats())

    def raise_if_failed(self) -> None:
        if self.error is None:
            return
        if isinstance(self.error, YoloAppError):
            raise self.error
        raise RuntimeFailure(describe(self.error)) from self.error

    @property
    def running(self) -> bool:
        return self._started and any(w.alive for w in self._workers)

    @property
    def completed(self) -> bool:
        """Ended by the source (or max_frames) with every output complete."""
        return self._started and not self.stopped_by_user and self.error is None and not self.running

    # internals ------------------------------------------------------------------------------
    def _only_sinks_left(self) -> bool:
        """Capture, inference and classifiers ended cleanly: every result is on its way to the sinks."""
        stages = [self.capture, *self.inference, *(c for c in self.classifiers if c is not None)]
        return self.error is None and not self.stopped_by_user and not any(w.alive for w in stages)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._cancel()

    def _cancel(self) -> None:
        for worker in self._workers:
            worker.stop()
        for channel in self.frame_channels:
            channel.cancel()
        for classifier in self.classifiers:
            if classifier is not None:
                classifier.inp.cancel()
        for runners in self.sink_runners:
            for runner in runners:
                runner.channel.cancel()

    def stats(self, branch: int = 0) -> PipelineStats:
        inference = self.inference[branch]
        written = min((r.written for r in self.sink_runners[branch]), default=inference.rate.count)
        return PipelineStats(
            captured=self.capture.captured,
            dropped=self.frame_channels[branch].dropped,
            inferred=inference.rate.count,
            written=written,
            capture_fps=self.capture.rate.rate(),
            inference_fps=inference.rate.rate(),
            latency_p50_ms=inference.latency.percentile(50),
            latency_p95_ms=inference.latency.percentile(95),
            reconnects=self.source.reconnects,
            state=self.source.state.value,
        )
