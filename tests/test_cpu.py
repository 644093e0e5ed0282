"""Where the CPU time goes (engine/cpu.py): a run whose network share is known by construction, and the
report of a real annotate run."""

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
    ledger = CpuLedger()
    pool_ready, burned, release = threading.Event(), threading.Event(), threading.Event()

    def pool_worker():  # a backend's worker thread: started inside a backend call, alive after the run
        pool_ready.wait()
        burn(0.4)
        burned.set()
        release.wait(10)

    def stage_thread():  # another stage: its own CPU, charged to decode (with colour inside it)
        with ledger.charge("decode"):
            burn(0.1)
            with ledger.charge("colour"):
                burn(0.2)

    with ledger.backend_call():  # building the backend starts its pool (the ledger not yet counting)
        pool = threading.Thread(target=pool_worker)
        pool.start()
    ledger.start()
    pool_ready.set()
    with ledger.backend_call():
        burn(0.3)  # the calling thread inside the backend
    other = threading.Thread(target=stage_thread)
    other.start()
    other.join()
    burn(0.2)  # charged to nobody: "other"
    assert burned.wait(10)
    ledger.stop()
    release.set()
    pool.join()
    report = ledger.report(frames=10)
    # network 0.3 + 0.4 s; decode 0.1 (colour nested in it is not counted twice); colour 0.2; other 0.2
    assert report.network_s == pytest.approx(0.7, abs=0.06)
    assert report.stage_ms["decode"] == pytest.approx(10, abs=2)  # ms a frame: 0.1 s over 10 frames
    assert report.stage_ms["colour"] == pytest.approx(20, abs=2)
    assert report.network_share == pytest.approx(0.7 / 1.2, abs=0.06)
    assert report.other_ms == pytest.approx(20, abs=8)


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
