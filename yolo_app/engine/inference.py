"""Detection: letterbox exactly as Ultralytics does, run the network, keep the boxes its head keeps
(NMS, or an end-to-end head's top-k: engine/heads.py).

``Detector`` is plain code (no thread) so tests and benchmarks can call it directly; the
``InferenceWorker`` thread owns one and feeds it from the capture channel. Thresholds live in a
frozen ``DetectionSettings`` swapped by reference, so a GUI slider applies to the next frame.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, Sequence, cast

import numpy as np

from yolo_app.engine.backends import ExportCache, export_backend, make_runner
from yolo_app.engine.channel import Channel, ChannelClosed
from yolo_app.engine.cpu import LEDGER
from yolo_app.engine.heads import HEAD_END2END, in_graph_top_k, non_max_suppression, one_to_one_top_k
from yolo_app.engine.letterbox import apply_letterbox, letterbox_geometry
from yolo_app.engine.models import LoadedModel, on_passing_thread
from yolo_app.engine.runners import Runner, Streaming
from yolo_app.engine.stats import LatencyMeter, RateMeter
from yolo_app.engine.tracking import Tracker
from yolo_app.engine.types import Boxes, Detected, Frame, GridScores, HeadCounts, Letterbox, Result, Timings
from yolo_app.engine.worker import Worker
from yolo_app.settings import (DEFAULT_CONF, DEFAULT_IMGSZ, DEFAULT_IOU, DEFAULT_MAX_DET, check_grid_stride,
                               check_thresholds)

if TYPE_CHECKING:
    from yolo_app.engine.torch_runner import TorchRunner

log = logging.getLogger(__name__)

FILE_BATCH = 8  # frames per inference call for files: a CUDA batch (196 vs 89 FPS, H100, yolov8n), CPU streams


@dataclass(frozen=True)
class DetectionSettings:
    """Ultralytics' predict options, names and defaults."""

    conf: float = DEFAULT_CONF
    iou: float = DEFAULT_IOU
    imgsz: int = DEFAULT_IMGSZ
    classes: tuple[int, ...] | None = None
    max_det: int = DEFAULT_MAX_DET
    grid: bool = False  # also return the head's per-cell scores (the grid view)
    grid_class: int | None = None  # the grid view's heat map for this class; None: the best class
    grid_stride: int | None = None  # the grid view's one stride; None: all

    def __post_init__(self) -> None:
        check_thresholds(self.conf, self.iou, self.imgsz, self.max_det)
        check_grid_stride(self.grid_stride)


def file_batch(model: LoadedModel) -> int:
    """Frames per inference call when frames are waiting (files): a batch on CUDA; on a CPU as many frames
    as its streams have in flight (engine/runners.py), and some to spare; one on a Mac's GPU."""
    return FILE_BATCH if model.device.type in ("cuda", "cpu") else 1


class Detector:
    """Runs one loaded detection model on BGR frames; returns each frame's boxes (``Detected``)."""

    def __init__(self, model: LoadedModel, settings: DetectionSettings | None = None) -> None:
        self.model = model
        self.settings = settings or DetectionSettings()
        # Dynamic-shape backends take the smallest stride-aligned input; a file exported at a fixed size
        # gets exactly that size, padded whole, as Ultralytics' predict does for it.
        self.minimal_padding = model.input_hw is None
        # Exported backends are compiled for one input shape: a runner per letterboxed (height, width).
        self._runners: dict[tuple[int, int], Runner] = {}
        self._torch: TorchRunner | None = None
        if model.module is not None:  # torch is imported only where it runs the network
            from yolo_app.engine.torch_runner import TorchRunner

            self._torch = TorchRunner(model.module, model.device, model.half, freeze=model.device.type == "cpu")

    @property
    def torch_runner(self) -> TorchRunner | None:
        """The runner of the network on PyTorch (None where an export runs it)."""
        return self._torch

    @property
    def runs_on_torch(self) -> bool:
        """PyTorch runs the network (the module may be loaded beside an export that runs it instead)."""
        return self._torch is not None and self.model.backend == "torch"

    @property
    def names(self) -> dict[int, str]:
        return self.model.names

    def warmup(self, height: int, width: int, batch: int = 1, settings: DetectionSettings | None = None) -> None:
        """A throw-away pass at the real input shape (and batch: the CPU backends start their streams for it), so
        the first frames are not slow. PyTorch on a CPU warms up on a thread that ends, whoever calls it: a
        caller that lives on (the main thread, a GUI helper) would otherwise keep an OpenMP pool beside the
        inference thread's (see ``on_passing_thread``: 62 instead of 42 ms a frame)."""
        imgsz = (settings or self.settings).imgsz
        box = letterbox_geometry(height, width, self.model.input_hw or imgsz, self.model.stride, self.minimal_padding)

        def passes() -> None:
            for n in sorted({1, min(batch, 2)}):
                self.forward(np.zeros((n, *box.input_hw, 3), np.uint8))

        if self.runs_on_torch and self.model.device.type == "cpu":
            on_passing_thread(passes)
        else:
            passes()

    def detect(self, images: Sequence[np.ndarray],
               settings: DetectionSettings | Sequence[DetectionSettings] | None = None) -> list[Detected]:
        """Detect on a batch, in order. ``settings``: the detector's own (None), one for every frame, or one
        per frame (a shared detector's call with frames from several cameras). Frames that need the same
        network input (their size and ``imgsz``) go through the network together."""
        each = [settings or self.settings] * len(images) if not isinstance(settings, Sequence) else list(settings)
        groups: dict[tuple, list[int]] = {}
        for i, (image, s) in enumerate(zip(images, each, strict=True)):
            groups.setdefault((image.shape, s.imgsz), []).append(i)
        out: list[Detected | None] = [None] * len(images)
        for members in groups.values():
            found = self._detect_same_shape([images[i] for i in members], [each[i] for i in members])
            for i, detected in zip(members, found):
                out[i] = detected
        return cast(list[Detected], out)

    def _detect_same_shape(self, images: Sequence[np.ndarray], settings: Sequence[DetectionSettings]
                           ) -> list[Detected]:
        t0 = time.perf_counter()
        height, width = images[0].shape[:2]
        box = letterbox_geometry(height, width, self.model.input_hw or settings[0].imgsz, self.model.stride,
                                 self.minimal_padding)
        streaming = self._streaming_runner(*box.input_hw) if len(images) > 1 else None
        if streaming is not None:
            return self._detect_streamed(streaming, images, settings, box)
        with LEDGER.charge("letterbox"):
            letterboxed = [apply_letterbox(im, box) for im in images]
            batch = letterboxed[0][None] if len(letterboxed) == 1 else np.stack(letterboxed)
        t1 = time.perf_counter()
        preds = self.forward(batch)
        t2 = time.perf_counter()
        with LEDGER.charge("nms"):
            found = [self._postprocess(p, s, box, height, width) for p, s in zip(preds, settings)]
        t3 = time.perf_counter()
        n = len(images)
        timings = Timings((t1 - t0) * 1e3 / n, (t2 - t1) * 1e3 / n, (t3 - t2) * 1e3 / n)
        return [Detected(d, timings, counts, grid) for d, counts, grid in found]

    def _streaming_runner(self, height: int, width: int) -> Streaming | None:
        """The runner that takes this input a frame per stream (every backend on a CPU), else None."""
        if self.model.device.type != "cpu":
            return None
        return cast(Streaming, self._torch if self.runs_on_torch else self._runner(height, width))

    def _detect_streamed(self, runner: Streaming, images: Sequence[np.ndarray], settings: Sequence[DetectionSettings],
                         box: Letterbox) -> list[Detected]:
        """A batch through the CPU's streams: letterbox, network and NMS of different frames overlap."""
        height, width = images[0].shape[:2]
        t0 = time.perf_counter()
        spent = {"pre": 0.0, "post": 0.0}

        def letterboxed() -> Iterator[np.ndarray]:
            for image in images:
                start = time.perf_counter()
                with LEDGER.charge("letterbox"):
                    array = apply_letterbox(image, box)[None]
                spent["pre"] += time.perf_counter() - start
                yield array

        found = []
        for pred, s in zip(runner.stream(letterboxed()), settings):
            start = time.perf_counter()
            with LEDGER.charge("nms"):
                found.append(self._postprocess(pred[0], s, box, height, width))
            spent["post"] += time.perf_counter() - start
        n, total = len(images), time.perf_counter() - t0
        timings = Timings(spent["pre"] * 1e3 / n, (total - spent["pre"] - spent["post"]) * 1e3 / n,
                          spent["post"] * 1e3 / n)
        return [Detected(d, timings, counts, grid) for d, counts, grid in found]

    def stop_streams(self) -> None:
        """End the threads of the runners' throughput streams (a run is over; the next batch starts them)."""
        for runner in (self._torch, *self._runners.values()):
            stop = getattr(runner, "stop_streams", None)  # TensorRT's runner has no streams
            if stop is not None:
                stop()

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """The head's output for a letterboxed uint8 BGR batch (B, H, W, 3), from whichever backend runs the
        network: (B, 4 + nc, candidates), or (B, k, 6) rows from an Ultralytics end-to-end export."""
        if self.runs_on_torch:
            return self._torch(batch)
        return self._runner(batch.shape[1], batch.shape[2])(batch)

    def _runner(self, height: int, width: int) -> Runner:
        run = self._runners.get((height, width))
        if run is None and self.model.exported:  # the user's own export: it runs as it is
            run = self._runners[(height, width)] = make_runner(self.model.backend, self.model.path, self.model.device,
                                                               self.model.half, self.model.bf16)
        if run is None:
            model = self.model
            form = "e2e" if model.head == HEAD_END2END else ""
            cache, backend = ExportCache(model.path), export_backend(model.backend)

            def exported(rebuild: bool = False):
                if model.calibration is not None:  # INT8: quantized on the user's footage for this input size
                    return cache.get_int8((height, width), model.calibration, form=form, rebuild=rebuild)
                return cache.get(backend, (height, width), half=model.half, rebuild=rebuild, form=form)

            made = exported()  # a failure to export or quantize is the user's one line, not retried
            try:
                run = make_runner(model.backend, made, model.device, model.half, model.bf16)
            except Exception:  # noqa: BLE001 - a cache entry the runtime cannot load: export it again, once
                log.warning("cached %s export would not load; exporting again", model.backend, exc_info=True)
                run = make_runner(model.backend, exported(rebuild=True), model.device, model.half, model.bf16)
            self._runners[(height, width)] = run
        return run

    def _postprocess(self, pred: np.ndarray, s: DetectionSettings, box: Letterbox, height: int, width: int
                     ) -> tuple[Boxes, HeadCounts, GridScores | None]:
        model = self.model
        if model.top_k_in_graph:  # rows (k, 6): nothing per candidate to read back, no grid
            kept = in_graph_top_k(pred, s.conf, s.classes, s.max_det)
            best = None
        else:
            best = pred[4:].max(0)  # each candidate's best class score: the conf filter and the grid view
            if model.head == HEAD_END2END:
                kept = one_to_one_top_k(pred, s.conf, s.classes, s.max_det, best)
            else:
                kept = non_max_suppression(pred, s.conf, s.iou, s.classes, s.max_det, best, model.half)
        xyxy = kept.xyxy
        xyxy[:, [0, 2]] = ((xyxy[:, [0, 2]] - box.left) / np.float32(box.new_w / width)).clip(0, width)
        xyxy[:, [1, 3]] = ((xyxy[:, [1, 3]] - box.top) / np.float32(box.new_h / height)).clip(0, height)
        class_id = kept.cls.astype(int)
        data = {"class_name": np.array([model.names.get(i, str(i)) for i in class_id], dtype=object)}
        if best is not None:
            # The head's full score vector of each kept box, read from the very candidate it came from.
            data["class_probs"] = pred[4:, kept.anchor].T.astype(np.float32)
            data["anchor"] = kept.anchor
        boxes = Boxes(xyxy, kept.conf, class_id, data=data)
        counts = HeadCounts(int(pred.shape[0] if best is None else pred.shape[1]), kept.above_conf, len(boxes),
                            model.head)
        grid = None
        if s.grid and best is not None:
            # A class of the model (in compare mode the chosen class may belong to the other model's list).
            chosen = s.grid_class is not None and s.grid_class < pred.shape[0] - 4
            scores = pred[4 + s.grid_class] if chosen else best
            grid = GridScores(scores.astype(np.float32), model.strides, box,
                              s.grid_class if chosen else None, s.grid_stride)
        return boxes, counts, grid


class FrameDetector(Protocol):
    """What an inference worker runs: a ``Detector``, or one camera's client of a shared one (engine/shared.py)."""

    settings: DetectionSettings

    @property
    def model(self) -> LoadedModel: ...

    def warmup(self, height: int, width: int, batch: int = 1) -> None: ...

    def detect(self, images: Sequence[np.ndarray]) -> list[Detected]: ...


class InferenceWorker(Worker):
    """Owns the detector: takes frames (in batches when they are waiting), fans results out.

    ``detector`` may be replaced from another thread (a model switch): the next batch uses the new one.
    """

    def __init__(self, detector: FrameDetector, inp: Channel[Frame], outputs: list[Channel[Result]], *,
                 warmup_hw: tuple[int, int] | None = None, batch: int = 1, name: str = "inference",
                 tracker: Tracker | None = None, gate: Callable[[Frame], bool] | None = None,
                 refine: Callable[[Result], Result] | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 post: Callable[[Result], Result] | None = None) -> None:
        super().__init__(name, on_error)
        self.detector = detector
        self.gate = gate  # says per frame whether to run the detector (motion gating); skipped frames still flow
        self.tracker = tracker  # runs here, in frame order, right after detection
        self.refine = refine  # after tracking: what a front end makes of the tracks (the monitor's objects)
        self.post = post  # after that: a live second stage's latest labels (engine/classify.py)
        self.inp = inp
        self.outputs = outputs
        self.warmup_hw = warmup_hw
        # Set once the model is warm (a backend's first export and compile included), so capture can
        # wait for it instead of pacing a file in real time, or dropping live frames, meanwhile.
        self.ready = threading.Event()
        self.batch = batch
        self.rate = RateMeter()
        self.latency = LatencyMeter()

    def run(self) -> None:
        try:
            if self.warmup_hw is not None:
                self.detector.warmup(*self.warmup_hw, batch=self.batch)
        finally:
            self.ready.set()  # also after a failure: the pipeline's error handling takes over
        while not self.stopping:
            try:
                frames = self.inp.get_batch(self.batch, timeout=0.1)
            except TimeoutError:
                continue
            except ChannelClosed:
                break
            if not self._process(frames):
                break
        LEDGER.backend_threads_now()  # a torch backend's OpenMP team ends with this thread: count it first
        for channel in self.outputs:  # a clean end; after a failure the pipeline cancels instead
            channel.close()

    def _process(self, frames: list[Frame]) -> bool:
        detector = self.detector  # one model for the whole batch, even if a switch lands meanwhile
        wanted = [self.gate is None or self.gate(f) for f in frames]
        found = iter(detector.detect([f.image for f, w in zip(frames, wanted) if w]) if any(wanted) else ())
        done = time.monotonic()
        model_id = detector.model.model_id
        for frame, inferred in zip(frames, wanted):
            if not inferred:  # tracks are left as they were: nothing was looked at
                result = Result(frame, Boxes.empty(), Timings(0.0, 0.0, 0.0), model_id, done, inferred=False)
                if not all(channel.put(result) for channel in self.outputs):
                    return False
                continue
            out = next(found)
            boxes = out.boxes
            if self.tracker is not None:
                boxes = self.tracker.update(boxes, frame.pts_s, frame.index)
            result = Result(frame, boxes, out.timings, model_id, done, out.counts, out.grid)
            if self.refine is not None:
                result = self.refine(result)
            if self.post is not None:
                result = self.post(result)
            self.latency.add((done - frame.captured_at) * 1e3)
            for channel in self.outputs:
                if not channel.put(result):
                    return False
        self.rate.tick(len(frames), done)
        return True
