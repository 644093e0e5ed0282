"""Where the CPU time goes, counted rather than sampled: ``annotate --cpu-report`` and ``bench``.

The network's share is the CPU time spent inside the backend's calls: the calling thread's own CPU clock
over each call, plus every thread the backend started. Those threads are found by name: the kernel gives
a new thread the name of the thread that started it, and a thread is called ``backend`` (``backend_call``)
while it is inside the backend, so OpenVINO's, ONNX Runtime's and torch's worker pools carry that name
and nothing else does (OpenCV's pool, started by a letterbox, carries the inference thread's). The
other stages charge their own thread CPU clock to a named stage. Linux (``/proc/self/task``); elsewhere
the per-thread part reads nothing and the report says the network's share is unknown."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")  # what backends pick by
T = TypeVar("T")
_END = object()
BACKEND_THREAD = "backend"
NETWORK = "network"
STAGES = ("decode", "colour", "letterbox", "nms", "record", "draw", "encode")  # the report's order
_PR_SET_NAME, _PR_GET_NAME = 15, 16
_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
_LINUX = sys.platform.startswith("linux")
_libc = ctypes.CDLL(None, use_errno=True) if _LINUX else None


def set_thread_name(name: str) -> None:
    """The calling thread's name as the kernel shows it (``top -H``; 15 bytes at most); no-op off Linux."""
    if _libc is not None:
        _libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def _thread_name() -> bytes:
    buffer = ctypes.create_string_buffer(16)
    if _libc is not None:
        _libc.prctl(_PR_GET_NAME, buffer, 0, 0, 0)
    return buffer.value


class CpuLedger:
    """One run's accounts. ``charge(stage)`` blocks add the calling thread's CPU time to a stage;
    ``backend_call()`` blocks add it to the network and name the thread for whatever it starts. Inactive
    (the default, ``LEDGER``) it costs one attribute read per block."""

    def __init__(self) -> None:
        self.active = False
        self._lock = threading.Lock()
        self._nested = threading.local()  # per thread: the CPU time of blocks inside the open ones
        self.charged: dict[str, float] = defaultdict(float)
        self._begin_threads: dict[int, float] = {}
        self._begin_process = 0.0
        self._end_threads: dict[int, float] = {}
        self.process_s = 0.0
        self.backend_threads_s = 0.0

    def start(self) -> None:
        with self._lock:
            self.charged.clear()
            self._end_threads = {}
        self._begin_threads = _backend_threads()
        self._begin_process = _process_cpu()
        self.active = True

    def backend_threads_now(self) -> None:
        """Read the backend's threads before some of them end: torch's OpenMP team lives as long as the
        thread that calls it, so the inference thread reads it on its way out."""
        if self.active:
            now = _backend_threads()
            with self._lock:
                for tid, seconds in now.items():
                    self._end_threads[tid] = max(seconds, self._end_threads.get(tid, 0.0))

    def stop(self) -> None:
        self.backend_threads_now()
        self.active = False
        self.process_s = _process_cpu() - self._begin_process
        self.backend_threads_s = sum(s - self._begin_threads.get(tid, 0.0) for tid, s in self._end_threads.items())

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.charged[stage] += seconds

    @contextmanager
    def charge(self, stage: str) -> Iterator[None]:
        """The calling thread's CPU time inside the block goes to ``stage``, less what blocks nested in it
        charge to theirs (decoding a frame includes converting its colours; each is counted once)."""
        if not self.active:
            yield
            return
        stack = self._nested.__dict__.setdefault("stack", [])
        stack.append(0.0)
        begin = time.thread_time()
        try:
            yield
        finally:
            spent = time.thread_time() - begin
            inner = stack.pop()
            if stack:
                stack[-1] += spent
            self.add(stage, spent - inner)

    def charged_iter(self, stage: str, items: Iterable[T]) -> Iterator[T]:
        """``items``, the CPU time of producing each (a decoder's next frame) charged to ``stage``."""
        iterator = iter(items)
        while True:
            with self.charge(stage):
                item = next(iterator, _END)
            if item is _END:
                return
            yield item

    @contextmanager
    def backend_call(self) -> Iterator[None]:
        """Inside the backend: the calling thread's CPU goes to the network, and any thread it starts is
        named ``backend``. Also around building a backend (the ledger inactive), where its pools start."""
        old = _thread_name()
        set_thread_name(BACKEND_THREAD)
        try:
            with self.charge(NETWORK):
                yield
        finally:
            if _libc is not None:
                _libc.prctl(_PR_SET_NAME, old, 0, 0, 0)

    def report(self, frames: int) -> CpuReport:
        with self._lock:
            charged = dict(self.charged)
        network = charged.pop(NETWORK, 0.0) + self.backend_threads_s
        per_frame = {k: charged.get(k, 0.0) * 1e3 / max(frames, 1) for k in STAGES if k in charged}
        other = self.process_s - network - sum(charged.get(k, 0.0) for k in STAGES)
        return CpuReport(self.process_s, network, per_frame, max(0.0, other) * 1e3 / max(frames, 1), frames,
                         per_thread=_LINUX)


@dataclass(frozen=True)
class CpuReport:
    """The process's CPU seconds over a run, the network's part, and every other stage's CPU ms a frame
    (``other_ms``: what no stage claims: codec helper threads, the interpreter, the main thread)."""

    process_s: float
    network_s: float
    stage_ms: dict[str, float]
    other_ms: float
    frames: int
    per_thread: bool = True  # False off Linux: the backend's own threads could not be counted

    @property
    def network_share(self) -> float | None:
        return self.network_s / self.process_s if self.per_thread and self.process_s > 0 else None

    def line(self) -> str:
        share = "unknown (needs Linux)" if self.network_share is None else f"{self.network_share:.1%}"
        stages = ", ".join(f"{name} {ms:.1f}" for name, ms in {**self.stage_ms, "other": self.other_ms}.items())
        return (f"cpu: {self.process_s:.1f} s over {self.frames} frames, the network {share} "
                f"({self.network_s * 1e3 / max(self.frames, 1):.1f} ms a frame); the rest in ms a frame: {stages}")


def _backend_threads() -> dict[int, float]:
    """CPU seconds of each live thread named ``backend``."""
    out: dict[int, float] = {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name == BACKEND_THREAD:
            fields = stat[stat.rindex(")") + 2:].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime
    return out


def _process_cpu() -> float:
    times = os.times()
    return times.user + times.system


LEDGER = CpuLedger()  # the process's one ledger: stages charge it wherever they run


def cpu_description() -> str:
    """The CPU's model and the instruction sets backends choose their kernels and precision by: figures
    from different CPUs are not comparable."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    present = [f for f in CPU_FLAGS if f in flags]
    return f"{name}, {os.cpu_count()} cores, {' '.join(present) or 'none of ' + '/'.join(CPU_FLAGS)}"
