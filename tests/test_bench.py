import json
import os

import pytest

from conftest import run_cli
from yolo_app.bench.processes import ProcessRun
from yolo_app.bench.report import Measured, figures
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
    # Equal terms on every CPU backend, the chosen one's pair being the main table's same-backend row.
    assert set(report["equal_terms"]) == {"torch", "onnx", "openvino"}
    for backend, fps in report["equal_terms_fps"].items():
        assert report["equal_terms"][backend] == pytest.approx(fps["yolo_app"] / fps["ultralytics"], rel=0.01)
    assert report["equal_terms_fps"][report["backend"]] == {"yolo_app": report["pipeline_novideo_fps"],
                                                            "ultralytics": report["ultralytics_same_backend_fps"]}
    assert 0 < report["first_result_s"] < 120 / report["pipeline_novideo_fps"]
    # Counted in the annotate runs: the network takes most of the CPU on any machine, less beside the video.
    assert 0.5 < report["network_cpu_share"] < report["network_cpu_share_novideo"] < 1
    assert {"decode", "colour", "letterbox", "nms", "record", "draw", "encode"} <= set(report["stage_cpu_ms"])
    assert "avx2" in report["cpu"] and f"{os.cpu_count()} cores" in report["cpu"]
    # INT8 quantized on the demo itself, against the same network in fp32 on the same frames.
    assert report["int8_speedup"] == pytest.approx(report["int8_fps"] / report["fp32_fps"], rel=0.01)
    assert 0.5 <= report["int8_agreement"] <= 1 and report["int8_frames_compared"] == 120
    assert report["int8_boxes_compared"] > 0 and "bus" in report["int8_agreement_per_class"]


def run(wall_s, stdout="", cpu_s=1.0, rss=100.0):
    return ProcessRun(wall_s, cpu_s, rss, stdout)


def test_bench_figures_come_from_what_was_measured():
    ours = ("100 frames in {} s (10.0 FPS)\nfirst boxes {} s after the command started\n"
            "cpu: 9.0 s over 100 frames, the network {}% (81.0 ms a frame); the rest in ms a frame: decode {}, "
            "other 2.0")
    measured = Measured(
        frames=100,
        steps={
            "ultralytics": [run(20.0), run(25.0), run(21.0)],  # median 21 s
            "ultralytics_same_backend": [run(12.5)],
            "ultralytics_onnx": [run(30.0)],
            "annotate": [run(12.0, ours.format(10.0, 1.5, 80.0, 1.5), rss=900.0)],
            "annotate_novideo": [run(10.0, ours.format(8.0, 1.4, 90.0, 1.0)),
                                 run(11.0, ours.format(9.0, 1.6, 92.5, 0.9)),
                                 run(9.0, ours.format(7.0, 1.2, 91.0, 1.1))],
            "annotate_novideo_onnx": [run(25.0, ours.format(24.0, 1.0, 50.0, 1.0))],
        },
        pairs={"openvino": ("annotate_novideo", "ultralytics_same_backend"),
               "onnx": ("annotate_novideo_onnx", "ultralytics_onnx")},
        bare_fps=20.0)
    r = figures(measured)
    assert r["ultralytics_fps"] == pytest.approx(100 / 21, abs=0.01) and r["pipeline_novideo_fps"] == 10.0
    assert r["equal_terms"] == {"openvino": 1.25, "onnx": 1.2}  # 12.5 s vs 10 s; 30 s vs 25 s
    assert r["ratio_novideo_same_backend"] == 1.25
    assert r["run_novideo_fps"] == 12.5 and r["efficiency_novideo"] == 0.625  # 100 frames in 8 s; 12.5 / 20
    assert r["startup_s"] == 2.0 and r["first_result_s"] == 1.4  # medians: 10 s whole, 8 s run; 1.4 s
    assert r["peak_rss_mb"] == 900.0
    assert r["network_cpu_share"] == 0.8 and r["network_cpu_share_novideo"] == 0.91  # medians of what each run counted
    assert r["stage_cpu_ms"] == {"decode": 1.5, "other": 2.0} and r["stage_cpu_ms_novideo"] == {"decode": 1.0,
                                                                                                "other": 2.0}


def test_fp16_on_a_cpu_is_refused_with_one_line(clips, tmp_path):
    proc = run_cli("annotate", str(clips["bottle"]), "--device", "cpu", "--precision", "fp16", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.strip().endswith("fp16 needs a CUDA GPU; cpu runs fp32 "
                                                                 "(use --precision auto or fp32)")
    assert not list(tmp_path.iterdir())


def test_bench_refuses_a_missing_video(tmp_path):
    proc = run_cli("bench", str(tmp_path / "missing.mp4"))
    assert proc.returncode == 2 and "no such video" in proc.stderr
