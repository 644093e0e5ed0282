"""PyTorch running the network: a checkpoint's module on its device, or a TensorRT engine through
Ultralytics' AutoBackend. Imported only by runs that use torch (engine/backends.py: exports run without it)."""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from yolo_app.engine.cpu import LEDGER
from yolo_app.engine.device import Device
from yolo_app.engine.runners import Runner, ThreadStreams, one_frame_at_a_time, stream_layout, through_streams

log = logging.getLogger(__name__)


class TorchRunner:
    """A PyTorch module on its device. The uint8 pixels go to the device first (4x less to copy than
    floats), then reorder, BGR->RGB and scale run there; on CUDA through a reused page-locked buffer,
    so the copy is asynchronous (DMA) instead of going through a bounce buffer.

    ``freeze`` (the CPU): the network runs as a frozen TorchScript graph, traced once per input shape.
    Eager PyTorch returns to Python between its ~200 modules; the graph runs in C++ start to end (yolov8n
    384x640 on 2 cores: 31.5-35.5 ms against 37.7-41.7 eager, outputs bit for bit the same). A graph whose
    output differs from the eager module's on its first frame is dropped and that shape runs eagerly.

    On a CPU a batch runs as ``stream`` does: a frame per stream (``ThreadStreams``), each stream's thread
    with its own share of torch's threads, instead of one many-threaded pass over the batch. Once a batch
    has come, single frames run on the streams too, until the run ends (``stop_streams``): oneDNN's numbers
    differ in the last bits between thread counts (up to 1e-3 px), and a file's record must not depend on
    how many frames happened to be waiting."""

    FROZEN_SHAPES = 4  # graphs kept (each holds its own copy of the weights); the oldest goes first

    def __init__(self, module: Callable[[torch.Tensor], object], device: Device, half: bool,
                 freeze: bool = False) -> None:
        self.module = module
        self.device = torch.device(str(device))
        self.half = half
        self.freeze = freeze
        self._pinned_buffers: dict[tuple[int, ...], torch.Tensor] = {}
        self._frozen: dict[tuple[int, ...], Callable[[torch.Tensor], object] | None] = {}
        self._freezing = threading.Lock()
        count, threads = stream_layout()
        self._streams = ThreadStreams(count, functools.partial(torch.set_num_threads, threads))
        self._batched = False  # a batch has come: every frame runs on the streams until stop_streams
        self._threads = torch.get_num_threads()  # for a single frame: as configured when the model was built

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The head's output as float32 NumPy (fp16 widened on the device, exactly: NumPy's fp16 arithmetic
        is slow); the copy off a GPU waits for its work."""
        if self.device.type == "cpu" and (batch.shape[0] > 1 or self._batched):
            return through_streams(self.stream, batch)
        if self.device.type == "cpu" and torch.get_num_threads() != self._threads:
            # Torch starts each new thread with the count a stream's thread set last: this one gets every core.
            torch.set_num_threads(self._threads)
        with LEDGER.backend_call():
            return self._forward(batch)

    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The outputs of ``frames`` (each (1, H, W, 3)) in order, a frame in flight per stream (a CPU)."""
        self._batched = True
        return self._streams.map(self._forward, frames)

    def stop_streams(self) -> None:
        """A run is over: end the stream threads, and single frames get every core again until the next
        batch (a live view after a file's run)."""
        self._streams.close()
        self._batched = False

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            tensor = self.to_tensor(batch)
            out = (self._graph(tensor) if self.freeze else self.module)(tensor)
            return _head_output(out).float().cpu().numpy()

    @property
    def graph_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The input shapes that run as a frozen graph (the others eagerly)."""
        return tuple(shape for shape, graph in self._frozen.items() if graph is not None)

    def _graph(self, tensor: torch.Tensor) -> Callable[[torch.Tensor], object]:
        key = tuple(tensor.shape)
        with self._freezing:
            if key not in self._frozen:
                while len(self._frozen) >= self.FROZEN_SHAPES:
                    del self._frozen[next(iter(self._frozen))]
                self._frozen[key] = _frozen_graph(self.module, tensor)
            return self._frozen[key] or self.module

    def to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(batch)
        if self.device.type == "cuda":
            host = self._pinned(host)
        tensor = host.to(self.device, non_blocking=True).permute(0, 3, 1, 2).contiguous().flip(1)
        return (tensor.half() if self.half else tensor.float()).div_(255)

    def _pinned(self, host: torch.Tensor) -> torch.Tensor:
        """Copy into a reused pinned buffer of the batch's shape. Safe to reuse: the next batch's copy
        is queued on the same stream after this batch's kernels, which read the device copy."""
        buffer = self._pinned_buffers.get(tuple(host.shape))
        if buffer is None:
            buffer = self._pinned_buffers[tuple(host.shape)] = torch.empty(host.shape, dtype=host.dtype,
                                                                           pin_memory=True)
        else:
            torch.cuda.current_stream(self.device).synchronize()  # the previous copy out of it is done
        return buffer.copy_(host)


def _head_output(out: object) -> torch.Tensor:
    return out[0] if isinstance(out, (list, tuple)) else out  # (B, 4 + nc, candidates)


class _HeadOnly(torch.nn.Module):
    """The network with only the head's output, the one tensor a trace can return."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _head_output(self.network(x))


def _frozen_graph(module: Callable[[torch.Tensor], object], tensor: torch.Tensor
                  ) -> Callable[[torch.Tensor], object] | None:
    """``module`` traced on ``tensor``'s shape and frozen (weights folded in as constants); None when the
    trace fails or its output is not the eager module's, bit for bit."""
    if not isinstance(module, torch.nn.Module):
        return None
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about Python-side branches: checked below instead
            example = tensor.clone()  # an inference-mode tensor cannot enter a trace
            graph = torch.jit.freeze(torch.jit.trace(_HeadOnly(module).eval(), example, check_trace=False))
            same = torch.equal(graph(example), _head_output(module(example)))
    except Exception:  # noqa: BLE001 - any failure to trace only costs the graph's speed
        log.info("could not trace the network; it runs eagerly", exc_info=True)
        return None
    if not same:
        log.info("the traced network's output differs from the eager one's; it runs eagerly")
        return None
    return graph



def tensorrt_runner(path: Path, device: Device, half: bool) -> Runner:
    """TensorRT engines run through Ultralytics' AutoBackend, which owns the bindings and the CUDA stream."""
    from ultralytics.nn.autobackend import AutoBackend

    return one_frame_at_a_time(TorchRunner(AutoBackend(str(path), device=torch.device(str(device)), fp16=half,
                                                       verbose=False), device, half))
