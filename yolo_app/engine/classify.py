"""The second-stage thread: classify each detection's crop with any ``Stage`` a front end passes in
(``zoo.classifier.ClassifierStage`` today; the engine does not import it).

Files (``ChannelPolicy.ALL``): a lossless stage between inference and the sinks; every result waits for
its classifications, in order. Live sources (``LATEST``): the stage is off the display path. Results
go straight to the sinks carrying the newest classifications known for their boxes (same track id,
else the same class and the best overlap), and the stage takes the latest result when it is free, so
a slow classifier lowers how often labels refresh, never the frame rate.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Callable, Protocol, Sequence

import numpy as np

from yolo_app.engine.channel import Channel, ChannelClosed
from yolo_app.engine.stats import RateMeter
from yolo_app.engine.types import Boxes, ChannelPolicy, Result
from yolo_app.engine.worker import Worker

QUEUE_SIZE = 8  # results in flight into a lossless stage, as every other hand-off
MIN_IOU = 0.3  # a live box takes the classification of a classified box it overlaps this much


class Stage(Protocol):
    """What the engine needs of a second stage: the result with a ``classification`` column added
    (``with_classification``); it runs on the stage's own thread."""

    def apply(self, result: Result) -> Result: ...


def with_classification(result: Result, values: Sequence[dict | None]) -> Result:
    """``result`` with a ``classification`` column added to its boxes (frames and results are never mutated)."""
    column = np.empty(len(result.boxes), dtype=object)
    column[:] = list(values)
    return dataclasses.replace(result, boxes=dataclasses.replace(
        result.boxes, data={**result.boxes.data, "classification": column}))


class LatestClassifications:
    """The classifications of the last classified frame, to label newer frames' boxes with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: Boxes | None = None

    def update(self, boxes: Boxes) -> None:
        with self._lock:
            self._known = boxes

    def attach(self, result: Result) -> Result:
        with self._lock:
            known = self._known
        det = result.boxes
        values: list[dict | None] = [None] * len(det)
        if known is not None and len(known) and len(det):
            labels = known.data["classification"]
            by_track = {}
            if known.tracker_id is not None:
                by_track = {int(t): labels[i] for i, t in enumerate(known.tracker_id) if t is not None and t >= 0}
            from supervision import box_iou_batch  # live classification: a run that imports it anyway

            iou = box_iou_batch(det.xyxy, known.xyxy)
            iou[det.class_id[:, None] != known.class_id[None, :]] = 0
            for i in range(len(det)):
                tid = None if det.tracker_id is None else det.tracker_id[i]
                if tid is not None and int(tid) in by_track:
                    values[i] = by_track[int(tid)]
                elif iou[i].max() >= MIN_IOU:
                    values[i] = labels[int(np.argmax(iou[i]))]
        return with_classification(result, values)


class ClassifyWorker(Worker):
    def __init__(self, stage: Stage, policy: ChannelPolicy, outputs: list[Channel[Result]],
                 on_error: Callable[[BaseException], None] | None = None, name: str = "classify") -> None:
        super().__init__(name, on_error)
        self.stage = stage
        self.lossless = policy is ChannelPolicy.ALL
        self.inp: Channel[Result] = Channel(QUEUE_SIZE if self.lossless else 1, policy, name=name)
        self.outputs = outputs if self.lossless else []
        self.latest = LatestClassifications()
        self.rate = RateMeter()

    def attach(self, result: Result) -> Result:
        """Live: label a fresh result with the newest known classifications (on the inference thread)."""
        return self.latest.attach(result)

    def run(self) -> None:
        while not self.stopping:
            try:
                result = self.inp.get(timeout=0.1)
            except TimeoutError:
                continue
            except ChannelClosed:
                break
            classified = self.stage.apply(result)
            self.latest.update(classified.boxes)
            self.rate.tick()
            for channel in self.outputs:
                if not channel.put(classified):
                    return
        if not self.inp.cancelled:
            for channel in self.outputs:
                channel.close()
