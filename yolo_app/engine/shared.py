"""One detector for several pipelines (the monitor's cameras), so their frames share inference calls.

Each camera keeps its own pipeline: its capture, its newest-frame channel, its gate, tracker and sinks,
and its own settings (classes, thresholds). Only the network is shared: a camera's inference worker
hands its frame to ``SharedDetector`` through a ``DetectorClient`` and waits; one thread takes the calls
waiting from every camera (up to the backend's batch) and runs their frames together — one CUDA batch,
OpenVINO's throughput streams all in flight at once — instead of every camera's own latency-mode request
fighting for the same cores. It is fair by construction: a camera has at most one call waiting (its
worker blocks on it) and the waiting calls are served in the order they came, so no camera is ever more
than one call behind another.

    camera 1 --InferenceWorker--\\                                  /--> tracker 1 --> sinks 1
    camera 2 --InferenceWorker---> calls (FIFO) --SharedDetector----> tracker 2 --> sinks 2
    camera 3 --InferenceWorker--/                                  \\--> tracker 3 --> sinks 3
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from yolo_app.engine.channel import Channel, ChannelClosed
from yolo_app.engine.inference import DetectionSettings, Detector, file_batch
from yolo_app.engine.models import LoadedModel
from yolo_app.engine.types import ChannelPolicy, Detected
from yolo_app.engine.worker import Worker
from yolo_app.errors import RuntimeFailure

CALLS_WAITING = 64  # more cameras than this block on the hand-off until a call is served (never lost)


@dataclass(eq=False)
class _Call:
    images: Sequence[np.ndarray]
    settings: DetectionSettings
    warmup_hw: tuple[int, int] | None = None  # a warm-up at this frame size instead of a detection
    done: Future = field(default_factory=Future)


class SharedDetector(Worker):
    """Serves ``DetectorClient.detect`` calls from many threads with one ``Detector`` on one thread.

    Example::

        shared = SharedDetector(Detector(model))
        shared.start()
        branch = Branch(shared.client(settings), sinks, tracker)  # one per camera
        ...
        shared.stop(); shared.join(2.0)
    """

    def __init__(self, detector: Detector, batch: int | None = None) -> None:
        super().__init__("inference:shared")
        self.detector = detector
        self.batch = batch or file_batch(detector.model)  # calls per network call
        self._calls: Channel[_Call] = Channel(CALLS_WAITING, ChannelPolicy.ALL, name="shared inference")
        self._warm: set[tuple[int, int, int]] = set()
        self.served_calls = 0  # detector calls made and the frames they carried (the status: frames per call)
        self.served_frames = 0

    @property
    def model(self) -> LoadedModel:
        return self.detector.model

    def client(self, settings: DetectionSettings) -> DetectorClient:
        return DetectorClient(self, settings)

    def stop(self) -> None:
        super().stop()
        self._calls.close()  # calls already waiting are still served; later ones fail at once

    def call(self, call: _Call) -> list[Detected]:
        """Hand over a call and wait for its result (or its failure, raised here)."""
        if self.stopping or not self._calls.put(call):
            raise RuntimeFailure("shared inference has stopped")
        return call.done.result()

    def run(self) -> None:
        try:
            while True:
                try:
                    calls = self._calls.get_batch(self.batch, timeout=0.1)
                except TimeoutError:
                    continue
                except ChannelClosed:
                    return
                self._serve(calls)
        finally:  # ended or failed: nobody may be left waiting on a call that will never be served
            self._calls.close()
            while True:
                try:
                    left = self._calls.get(timeout=0)
                except (ChannelClosed, TimeoutError):
                    break
                left.done.set_exception(RuntimeFailure("shared inference has stopped"))

    def _serve(self, calls: list[_Call]) -> None:
        for c in calls:
            if c.warmup_hw is not None:
                self._answer(c, self._warmup)
        detections = [c for c in calls if c.warmup_hw is None]
        if len(detections) == 1:
            self._answer(detections[0], self._detect)
        elif detections:
            try:
                found = self._detect(*detections)
            except Exception:  # noqa: BLE001 - one camera's bad frame must not fail the others: each alone
                for c in detections:
                    self._answer(c, self._detect)
                return
            start = 0
            for c in detections:
                c.done.set_result(found[start:start + len(c.images)])
                start += len(c.images)

    @staticmethod
    def _answer(c: _Call, serve) -> None:
        try:
            c.done.set_result(serve(c))
        except BaseException as exc:  # noqa: BLE001 - raised in the camera's own worker, which handles it
            c.done.set_exception(exc)

    def _detect(self, *calls: _Call) -> list[Detected]:
        found = self.detector.detect([im for c in calls for im in c.images],
                                     [c.settings for c in calls for _ in c.images])
        self.served_calls += 1
        self.served_frames += len(found)
        return found

    def _warmup(self, c: _Call) -> list[Detected]:
        """Once per input shape, at the batch the shared calls will have (the CPU backends start their streams)."""
        assert c.warmup_hw is not None
        key = (*c.warmup_hw, c.settings.imgsz)
        if key not in self._warm:
            self.detector.warmup(*c.warmup_hw, batch=self.batch, settings=c.settings)
            self._warm.add(key)
        return []


class DetectorClient:
    """What one camera's pipeline holds instead of its own ``Detector``: the same ``detect``/``warmup``,
    run by the shared detector with this camera's ``settings``."""

    def __init__(self, shared: SharedDetector, settings: DetectionSettings) -> None:
        self.shared = shared
        self.settings = settings

    @property
    def model(self) -> LoadedModel:
        return self.shared.model

    @property
    def names(self) -> dict[int, str]:
        return self.shared.model.names

    def warmup(self, height: int, width: int, batch: int = 1) -> None:
        self.shared.call(_Call((), self.settings, warmup_hw=(height, width)))

    def detect(self, images: Sequence[np.ndarray]) -> list[Detected]:
        return self.shared.call(_Call(images, self.settings))
