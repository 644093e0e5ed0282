import json

import pytest

from conftest import run_cli
from yolo_app.engine.backends import openvino_native_bf16


@pytest.mark.slow
def test_bench_times_ultralytics_and_annotate_on_one_video_and_prints_their_ratio():
    proc = run_cli("bench", "demo", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["frames"] == 120 and report["video"].endswith("demo.mp4")
    assert report["backend"] in ("openvino", "onnx") and report["input_hw"] == [384, 640]  # auto on a CPU
    for key in ("ultralytics_fps", "ultralytics_same_backend_fps", "inference_fps", "pipeline_fps",
                "pipeline_novideo_fps", "peak_rss_mb"):
        assert report[key] > 0
    assert report["ratio"] == pytest.approx(report["pipeline_fps"] / report["ultralytics_fps"], rel=0.01)
    # Efficiency: annotate's own frame rate (start-up excluded, as it prints it) over the bare network's.
    assert report["efficiency"] == pytest.approx(report["run_fps"] / report["inference_fps"], rel=0.01)
    assert report["efficiency_whole"] == pytest.approx(report["pipeline_fps"] / report["inference_fps"], rel=0.01)
    assert report["run_novideo_fps"] > report["pipeline_novideo_fps"] and report["startup_s"] > 0
    assert report["ratio_novideo_same_backend"] == pytest.approx(
        report["pipeline_novideo_fps"] / report["ultralytics_same_backend_fps"], rel=0.01)
    # Live mode: the demo (120 frames, 4 s) played in real time into a size-1 slot, as a camera.
    assert 0 < report["latency_p50_ms"] <= report["latency_p95_ms"]
    native = report["backend"] == "openvino" and openvino_native_bf16()
    assert report["live_frames"] == 120 and report["precision"] == ("bf16" if native else "fp32")


def test_fp16_on_a_cpu_is_refused_with_one_line(clips, tmp_path):
    proc = run_cli("annotate", str(clips["bottle"]), "--device", "cpu", "--precision", "fp16", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.strip().endswith("fp16 needs a CUDA GPU; cpu runs fp32 "
                                                                 "(use --precision auto or fp32)")
    assert not list(tmp_path.iterdir())


def test_bench_refuses_a_missing_video(tmp_path):
    proc = run_cli("bench", str(tmp_path / "missing.mp4"))
    assert proc.returncode == 2 and "no such video" in proc.stderr
