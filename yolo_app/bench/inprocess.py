"""What the benchmark measures inside its own process: the backend alone (the ceiling for any pipeline)
and live-mode latency (the video played in real time into a newest-frame-wins slot, as a camera)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from yolo_app.engine.capture import Playback
from yolo_app.engine.inference import Detector, file_batch
from yolo_app.engine.models import on_passing_thread
from yolo_app.engine.pipeline import Pipeline
from yolo_app.engine.readers import AvReader
from yolo_app.engine.sinks import Sink
from yolo_app.engine.sources import SourceSpec
from yolo_app.engine.types import ChannelPolicy, Result, SourceKind

BARE_ITERATIONS = 50
LIVE_SECONDS = 15.0
HEAD_FRAMES = 50  # real frames per head in head_speed


class _LatencyProbe(Sink):
    """Records capture->result latency and per-frame processing time of a live-mode run."""

    policy = ChannelPolicy.LATEST
    name = "latency"

    def __init__(self) -> None:
        self.latency_ms: list[float] = []
        self.busy_ms: list[float] = []

    def write(self, result: Result) -> None:
        self.latency_ms.append((result.done_at - result.frame.captured_at) * 1e3)
        t = result.timings
        self.busy_ms.append(t.pre + t.infer + t.post)


def bare_fps(detector: Detector, input_hw: tuple[int, int]) -> float:
    """The backend alone on letterboxed input, after warm-up, in the batch annotate uses for files (on a
    CPU: the backend's streams, several frames in flight): the ceiling for any pipeline. The streams end
    with it, so what runs next (the live mode) runs single frames as a live view does."""
    model = detector.model
    batch = np.zeros((file_batch(model), *input_hw, 3), np.uint8)
    rounds = max(1, BARE_ITERATIONS // len(batch))

    def measure() -> float:
        for _ in range(2):
            detector.forward(batch)
        start = time.perf_counter()
        for _ in range(rounds):
            detector.forward(batch)  # NumPy out: a GPU's work is done when it returns
        return rounds * len(batch) / (time.perf_counter() - start)

    try:
        return on_passing_thread(measure)  # as the inference thread would, leaving no torch pool behind
    finally:
        detector.stop_streams()


def head_speed(detector: Detector, source: Path, frames: int = HEAD_FRAMES) -> dict[str, float]:
    """The detector on the video's first ``frames`` frames, one at a time as a live view runs them, after a
    warm-up: median ms a frame in the network and in the selection after it (NMS, or the one-to-one head's
    top-k), and the frames a second both make."""
    reader = AvReader(SourceSpec(SourceKind.VIDEO, str(source), source.stem))
    try:
        images = [image for _, (image, _, _) in zip(range(frames), reader.frames())]
    finally:
        reader.close()

    def measure() -> list:
        detector.warmup(*images[0].shape[:2])
        return [detector.detect([image])[0].timings for image in images]

    timings = on_passing_thread(measure)  # as the inference thread would, leaving no torch pool behind
    network = statistics.median(t.infer for t in timings)
    selection = statistics.median(t.post for t in timings)
    whole = statistics.median(t.pre + t.infer + t.post for t in timings)
    return {"network_ms": round(network, 2), "selection_ms": round(selection, 3), "fps": round(1e3 / whole, 1),
            "frames": len(images)}


def live_latency(detector: Detector, source: Path) -> dict[str, float | int]:
    """Play the video in real time into a size-1 slot, as a camera would, and measure how long each
    frame takes from capture to result. Target: p95 within one inference period plus one frame period."""
    reader = AvReader(SourceSpec(SourceKind.VIDEO, str(source), source.stem))
    fps = float(reader.info.fps or 30)
    probe = _LatencyProbe()
    pipeline = Pipeline(reader, detector, [probe], policy=ChannelPolicy.LATEST,
                        max_frames=int(LIVE_SECONDS * fps), playback=Playback(realtime=True))
    pipeline.run()
    stats = pipeline.stats()
    values = sorted(probe.latency_ms[int(fps):] or probe.latency_ms)  # after the first second
    busy = statistics.median(probe.busy_ms) if probe.busy_ms else 0.0
    return {
        "latency_p50_ms": round(values[len(values) // 2], 1),
        "latency_p95_ms": round(values[min(len(values) - 1, round(0.95 * (len(values) - 1)))], 1),
        "latency_budget_ms": round(busy + 1e3 / fps, 1),  # one inference period + one frame period
        "live_dropped": stats.dropped,
        "live_frames": stats.captured,
    }
