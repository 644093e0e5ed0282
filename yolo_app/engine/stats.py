"""Rates and latencies measured at the seams, over a sliding window of monotonic times."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path


def seconds_since_process_start() -> float:
    """How long this process has run (from its exec, imports included): "first boxes after N s". On Linux from
    /proc: the start in clock ticks since boot against the boot clock (psutil's create_time adds the boot time,
    which /proc keeps in whole seconds, so it can be a second off: first boxes after the run had ended)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):  # not Linux
        import psutil

        return max(0.0, time.time() - psutil.Process().create_time())


class RateMeter:
    """Events per second over the last ``window_s`` seconds (thread-safe, O(1) per tick)."""

    def __init__(self, window_s: float = 2.0, maxlen: int = 4096) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.count = 0

    def tick(self, n: int = 1, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.count += n
            self._times.extend([now] * n)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] > self.window_s:
                self._times.popleft()
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], 1e-6)
            return (len(self._times) - 1) / span


class LatencyMeter:
    """Recent latencies (ms) with percentiles."""

    def __init__(self, maxlen: int = 512) -> None:
        self._values: deque[float] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, ms: float) -> None:
        with self._lock:
            self._values.append(ms)

    def percentile(self, q: float) -> float:
        with self._lock:
            values = sorted(self._values)
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """A snapshot for status bars and progress lines."""

    captured: int
    dropped: int
    inferred: int
    written: int
    capture_fps: float
    inference_fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    reconnects: int
    state: str
