"""Where the CPU time goes (engine/cpu.py): a run whose network share is known by construction, and the
report of a real annotate run."""

import os
import re
import sys
import threading
import time

import pytest

from conftest import run_cli
from yolo_app.engine.cpu import CpuLedger

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread CPU accounts are Linux's")


def burn(seconds):
    """Spend ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_run_whose_network_share_is_known_by_construction():
    """Known amounts of CPU burnt on known threads. A thread's own CPU clock (the stages) is exact but for a
    few microseconds of bookkeeping; what /proc and the process clock read (the backend's own threads, the
    process) moves a tick at a time. Each margin is under what a thread's time counted in the wrong place
    would add, and other processes do not touch any of it: CPU time, not elapsed time."""
    ledger = CpuLedger()
    warmed, pool_ready, burned, release = (threading.Event() for _ in range(4))

    def pool_worker():  # a backend's worker thread: started inside a backend call, alive after the run
        burn(0.3)  # before the run: not the run's
        warmed.set()
        pool_ready.wait()
        burn(0.4)
        burned.set()
        release.wait(30)

    def stage_thread():  # another stage: its own CPU, charged to decode (with colour inside it)
        with ledger.charge("decode"):
            burn(0.3)
            with ledger.charge("colour"):
                burn(0.3)

    with ledger.backend_call():  # building the backend starts its pool (the ledger not yet counting)
        pool = threading.Thread(target=pool_worker)
        pool.start()
    assert warmed.wait(30)
    ledger.start()
    pool_ready.set()
    with ledger.backend_call():
        burn(0.3)  # the calling thread inside the backend
    other = threading.Thread(target=stage_thread)
    other.start()
    other.join()
    burn(0.1)  # charged to nobody: "other"
    assert burned.wait(30)
    ledger.stop()
    release.set()
    pool.join()
    frames = 10
    report = ledger.report(frames=frames)
    per_frame = 1e3 / frames  # ms a frame for each second
    slack = 3 / os.sysconf("SC_CLK_TCK")  # /proc's and the process clock's ticks
    # decode 0.3 s (colour nested in it is not counted twice: that would be 0.6); colour 0.3 s
    assert 0.3 * per_frame <= report.stage_ms["decode"] < 0.35 * per_frame
    assert 0.3 * per_frame <= report.stage_ms["colour"] < 0.35 * per_frame
    # network: 0.3 s on the calling thread + the pool's 0.4 s in the run (with its 0.3 s before, 1.0)
    assert 0.7 - slack <= report.network_s < 0.8
    # other: the 0.1 s nobody claims (and whatever else this process ran meanwhile); a stage or the network
    # counted in it too would make it 0.4 s or more
    assert (0.1 - slack) * per_frame <= report.other_ms < 0.3 * per_frame
    assert 0.4 < report.network_share < 0.6  # 0.7 of 1.4 s


@pytest.mark.parametrize("backend", ["openvino", "onnx", "torch"])
def test_annotate_cpu_report_counts_the_backends_own_threads(clips, tmp_path, backend):
    proc = run_cli("annotate", str(clips["person"]), "--backend", backend, "--cpu-report", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("cpu: "))
    share = float(re.search(r"the network ([\d.]+)%", line).group(1)) / 100
    stages = dict(item.split() for item in line.split("the rest in ms a frame: ")[1].split(", "))
    # Every backend runs a file's frames on threads beside the inference thread (OpenVINO's own streams, our
    # stream threads for the others): were they not counted, the share would be a few percent.
    assert 0.5 < share < 1
    assert {"decode", "colour", "letterbox", "nms", "record", "draw", "encode", "other"} <= set(stages)
    assert all(float(ms) >= 0 for ms in stages.values())
