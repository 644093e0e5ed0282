"""What runs an exported network on the CPU: ONNX Runtime and OpenVINO, each taking the letterboxed uint8
BGR batch and returning the head's output as NumPy (engine/backends.py chooses and builds them;
engine/torch_runner.py runs PyTorch and TensorRT). Each runs a single frame on every core (latency) and
a file's frames several at a time (``stream``: throughput)."""

from __future__ import annotations

import logging
import os
import queue
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol, TypeVar

import numpy as np

from yolo_app.engine.cpu import BACKEND_THREAD, LEDGER, set_thread_name

log = logging.getLogger(__name__)
J = TypeVar("J")  # a started piece of work: a future, an inference request

# letterboxed uint8 BGR (B, H, W, 3) -> (B, 4 + nc, candidates); (B, k, 6) rows from an Ultralytics end-to-end
# export. NumPy arrays both ways, whatever runs the network: a run on an export never imports torch.
Runner = Callable[[np.ndarray], np.ndarray]


class Streaming(Protocol):
    """A runner that also takes a file's frames several at a time (every runner on a CPU)."""

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...

    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]: ...

    def stop_streams(self) -> None:
        """End the threads the streams started (the next batch starts them again)."""


def one_frame_at_a_time(run: Runner) -> Runner:
    """Exports are compiled for batch 1: a batch runs frame by frame."""
    def batched(batch: np.ndarray) -> np.ndarray:
        return run(batch) if batch.shape[0] == 1 else through_streams(lambda frames: map(run, frames), batch)

    return batched


def in_order(items: Iterable[np.ndarray], start: Callable[[np.ndarray], J], finish: Callable[[J], np.ndarray],
             limit: int, abandon: Callable[[J], object]) -> Iterator[np.ndarray]:
    """``finish(start(item))`` for each item, in order, with up to ``limit`` started and not yet finished.
    Lazy both ways: the next item is started before the oldest output is handed over, so the caller
    prepares items and uses outputs while the others run. When the caller stops early or an item fails,
    what is still running is waited for (``abandon``): nothing may run on into the next call."""
    running: deque[J] = deque()
    try:
        for item in items:
            done = finish(running.popleft()) if len(running) == limit else None
            running.append(start(item))
            if done is not None:
                yield done
        while running:
            yield finish(running.popleft())
    finally:
        for job in running:
            abandon(job)


def through_streams(stream: Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]], batch: np.ndarray
                    ) -> np.ndarray:
    """A batch's outputs, its frames (each (1, H, W, 3)) through ``stream``."""
    return np.concatenate(list(stream(batch[i:i + 1] for i in range(batch.shape[0]))))


MAX_STREAMS = 4  # frames in flight at most; more cores give each stream more threads


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def stream_layout(cores: int | None = None) -> tuple[int, int]:
    """(streams, threads each) for throughput on ``cores``: a stream per core up to ``MAX_STREAMS``."""
    cores = max(1, cores or usable_cores())
    streams = min(cores, MAX_STREAMS)
    return streams, cores // streams


class ThreadStreams:
    """Throughput on a CPU for runtimes without streams of their own (ONNX Runtime, PyTorch): several
    frames in flight, each on a thread of its own with its share of the cores, as OpenVINO's streams.
    One frame on every core leaves cores idle at each layer's barrier, and the decode and NMS threads beside
    it stall the whole team; single-threaded streams never wait on each other (yolov8n 384x640 on 2 cores:
    ONNX Runtime 36.6 -> 47.6 FPS, frozen PyTorch 27.6 -> 39.0).

    The threads are named ``backend`` for their whole life, so the CPU ledger counts all of their time as the
    network's (engine/cpu.py); what they run must not open ``LEDGER.backend_call`` itself. They start with
    the first ``map`` and end at ``close`` (the next ``map`` starts them again), or when the streams are
    dropped (an idle thread holds no reference to them)."""

    def __init__(self, streams: int, setup: Callable[[], None] | None = None) -> None:
        self.count = streams
        self._setup = setup
        self._pool: ThreadPoolExecutor | None = None

    def map(self, run: Callable[[np.ndarray], np.ndarray], frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """``run`` over ``frames``, the outputs in order, ``count`` at a time. Lazy both ways: the caller
        prepares the next frame, and post-processes the last output, while the streams run."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.count, thread_name_prefix="stream", initializer=_stream_thread,
                                            initargs=(self._setup,))
        pool = self._pool
        return in_order(frames, lambda frame: pool.submit(run, frame), Future.result, self.count,
                        abandon=lambda future: wait([future]))

    def close(self) -> None:
        """End the threads once the frames in flight are done."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _stream_thread(setup: Callable[[], None] | None) -> None:
    set_thread_name(BACKEND_THREAD)
    if setup is not None:
        setup()


class OnnxRunner:
    """ONNX Runtime on the CPU: one session on every core for single frames (live views), and at the first
    batch a session per stream (``ThreadStreams``) for files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._latency = self._session(usable_cores())
        self._input = self._latency.get_inputs()[0].name
        count, self._stream_threads = stream_layout()  # one layout: as many sessions as frames in flight
        self._streams = ThreadStreams(count)
        self._idle: queue.SimpleQueue = queue.SimpleQueue()  # the stream sessions not running a frame

    def _session(self, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # Its workers sleep between calls instead of spinning: beside our decode and NMS threads the spinning
        # took the cores they needed (300 frames, 2 cores: 21.2 -> 23.8 FPS, network CPU 88.6 -> 67.2 ms a frame).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        with LEDGER.backend_call():  # its thread pool starts here
            return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] > 1:
            return through_streams(self.stream, batch)
        with LEDGER.backend_call():
            return self._latency.run(None, {self._input: _blob(batch)})[0]

    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The outputs of ``frames`` (each (1, H, W, 3)) in order, a frame in flight per stream."""
        if self._idle.empty():  # at the first batch: a session per stream, each on its share of the cores
            for _ in range(self._streams.count):
                self._idle.put(self._session(self._stream_threads))
        return self._streams.map(self._run_on_idle_session, frames)

    def stop_streams(self) -> None:
        self._streams.close()

    def _run_on_idle_session(self, frame: np.ndarray) -> np.ndarray:
        session = self._idle.get_nowait()  # never empty: no more frames are in flight than sessions
        try:
            return session.run(None, {self._input: _blob(frame)})[0]
        finally:
            self._idle.put(session)


def _blob(batch: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.dnn.blobFromImages(list(batch), 1 / 255, swapRB=True)  # NCHW RGB float32 in one pass


class OpenVinoRunner:
    """OpenVINO on the CPU, compiled for latency (one request using every core: live views, single
    frames) and, at the first batch, for throughput (several streams with a request in flight each: files).
    Streams never wait on each other, so the decode and encode threads beside them cost only their own
    CPU time instead of stalling a many-threaded request at its every barrier."""

    def __init__(self, path: Path, bf16: bool = False, compiled_cache: Path | None = None) -> None:
        import openvino as ov
        from openvino.preprocess import ColorFormat, PrePostProcessor

        self._core = ov.Core()
        try:  # compiled networks kept: both compiles of a start take half as long
            if compiled_cache is not None:
                compiled_cache.mkdir(parents=True, exist_ok=True)
                self._core.set_property({"CACHE_DIR": str(compiled_cache)})
        except OSError as exc:  # a read-only cache only costs compile time
            log.info("OpenVINO compiles without a cache: %s", exc)
        graph = path if path.suffix in (".xml", ".onnx") else next(path.glob("*.xml"))  # IR, or ONNX as it is
        # The network takes our letterboxed uint8 BGR frame as it is: layout, colour order and scaling
        # are compiled into the graph (fused with the first convolution) instead of passes in Python.
        steps = PrePostProcessor(self._core.read_model(graph))
        steps.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
            ColorFormat.BGR)
        steps.input().model().set_layout(ov.Layout("NCHW"))
        steps.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        self._model = steps.build()
        # Always named: bf16 (OpenVINO's own default where the CPU has AMX or AVX512-BF16, about twice as
        # fast) moves boxes by up to ~1 px and scores by ~0.01 from PyTorch's; f32 gives PyTorch's numbers.
        self._precision = "bf16" if bf16 else "f32"
        self._latency_request = self._compile("LATENCY").create_infer_request()
        self._stream_requests: list = []

    def _compile(self, hint: str):
        with LEDGER.backend_call():  # its executor's threads start here
            return self._core.compile_model(self._model, "CPU", {
                "PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": self._precision})

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] > 1:
            return through_streams(self.stream, batch)
        with LEDGER.backend_call():
            self._latency_request.infer({0: batch})
        return _output(self._latency_request)

    def stop_streams(self) -> None:
        """Nothing to end: OpenVINO's stream threads belong to its compiled model."""

    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The outputs of ``frames`` (each (1, H, W, 3)) in order, with one request in flight per stream.
        Lazy both ways: the next frame is letterboxed, and the last output post-processed by the caller,
        while the network runs."""
        if not self._stream_requests:
            compiled = self._compile("THROUGHPUT")
            count = max(2, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
            self._stream_requests = [compiled.create_infer_request() for _ in range(count)]
        idle = list(self._stream_requests)

        def start(frame: np.ndarray):
            request = idle.pop()
            with LEDGER.backend_call():
                request.start_async({0: frame})
            return request

        def finish(request) -> np.ndarray:
            with LEDGER.backend_call():
                request.wait()
            out = _output(request)
            idle.append(request)
            return out

        return in_order(frames, start, finish, len(self._stream_requests), abandon=lambda request: request.wait())


def _output(request) -> np.ndarray:
    return request.get_output_tensor(0).data.copy()  # the request reuses its buffer
