import json
import os
import re

import pytest

from conftest import run_cli
from yolo_app.bench.processes import ProcessRun
from yolo_app.bench.report import Measured, figures


@pytest.mark.slow
def test_bench_times_ultralytics_and_annotate_on_one_video_and_prints_their_ratio(clips):
    """The whole benchmark, for real, on 40 frames of the person video: every figure there, each measured. What
    each figure is made of is the next tests' subject (known measurements in, hand-computed figures out); here,
    only what is known apart from the report: the video, the machine, OpenVINO's own precision, and measurements
    of one run from two sides (the process's wall time and what annotate printed of itself)."""
    import openvino as ov

    proc = run_cli("bench", str(clips["person"]), "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["frames"] == 40 and report["video"] == str(clips["person"])
    assert report["backend"] in ("openvino", "onnx") and report["input_hw"] == [384, 640]  # auto on a CPU
    for key in ("ultralytics_fps", "ultralytics_same_backend_fps", "inference_fps", "pipeline_fps",
                "pipeline_novideo_fps", "peak_rss_mb", "ratio", "ratio_novideo_same_backend", "efficiency",
                "efficiency_whole", "run_fps"):
        assert report[key] > 0
    # annotate's own frame rate (start-up excluded) is above the whole process's, its first boxes come before
    # its end
    assert report["run_novideo_fps"] > report["pipeline_novideo_fps"] and report["startup_s"] > 0
    # The first boxes come before the run's end; annotate prints their time to 0.1 s (1.46 s shows as 1.5).
    assert 0 < report["first_result_s"] < 40 / report["pipeline_novideo_fps"] + 0.05
    # Live mode: the clip (40 frames, 4 s) played in real time into a size-1 slot, as a camera.
    assert 0 < report["latency_p50_ms"] <= report["latency_p95_ms"]
    native = report["backend"] == "openvino" and (
        ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT") == ov.Type.bf16)  # OpenVINO's own default
    assert report["live_frames"] == 40 and report["precision"] == ("bf16" if native else "fp32")
    # Equal terms on every CPU backend.
    assert set(report["equal_terms"]) == set(report["equal_terms_fps"]) == {"torch", "onnx", "openvino"}
    # Counted in the annotate runs: the network takes most of the CPU on any machine, less beside the video.
    assert 0.5 < report["network_cpu_share"] < report["network_cpu_share_novideo"] < 1
    assert {"decode", "colour", "letterbox", "nms", "record", "draw", "encode"} <= set(report["stage_cpu_ms"])
    assert "avx2" in report["cpu"] and f"{os.cpu_count()} cores" in report["cpu"]
    # INT8 quantized on the clip itself, against the same network in fp32 on the same frames.
    assert report["int8_speedup"] > 0 and report["int8_fps"] > 0 and report["fp32_fps"] > 0
    assert 0.5 <= report["int8_agreement"] <= 1 and report["int8_frames_compared"] == 40
    assert report["int8_boxes_compared"] > 0 and "person" in report["int8_agreement_per_class"]


# Known measurements for `bench demo` (120 frames) on the torch backend, each step's whole-process wall time in s
# and, for annotate, what it printed of itself: (wall, run s, first boxes s, network %, stages, peak MB). The
# second of three runs of every step is three times slower: a busy minute the medians must leave out.
ANNOTATE_SUMMARY = ("120 frames in {run} s (x FPS)\nfirst boxes {first} s after the command started\n"
                    "cpu: 9.0 s over 120 frames, the network {share}% (81.0 ms a frame); the rest in ms a frame: "
                    "{stages}")
KNOWN_STEPS = {
    # Ultralytics' predict: the .pt with its defaults; then, on equal terms, each backend's model file
    ("ultralytics", ".pt", "defaults"): 24.0,  # 5 FPS
    ("ultralytics", ".pt", "every core"): 20.0,  # 6 FPS: torch, the chosen backend's pair
    ("ultralytics", "onnx"): 12.0,  # 10 FPS
    ("ultralytics", "openvino"): 10.0,  # 12 FPS
    # annotate: (wall, run, first boxes, network %, stages, peak MB)
    ("annotate", "torch", "video"): (15.0, 9.6, 2.5, 80.0, "decode 1.5, encode 3.0", 900.0),  # 8 FPS, run 12.5
    ("annotate", "torch", "no video"): (12.0, 7.5, 1.5, 90.0, "decode 1.0, other 0.5", 700.0),  # 10 FPS, run 16
    ("annotate", "onnx", "no video"): (8.0, 6.0, 1.0, 95.0, "decode 1.0", 5000.0),  # 15 FPS
    ("annotate", "openvino", "no video"): (6.0, 5.0, 1.0, 95.0, "decode 1.0", 5000.0),  # 20 FPS
}


class FakeExports:
    """Stands in for the export cache: the benchmark's commands name the file; nothing is exported or run."""

    def __init__(self, weights):
        self.weights = weights

    def get(self, backend, input_hw, half=False, form=""):
        return f"/exports/{backend}-{input_hw[0]}x{input_hw[1]}"


def known_step(cmd: list[str]) -> tuple:
    """Which of KNOWN_STEPS a benchmark command is."""
    if cmd[1] == "-c":  # processes.ultralytics_cmd: script, weights, source, size, device, every_core, half
        weights, every_core = cmd[3], cmd[7]
        if weights.endswith(".pt"):
            return "ultralytics", ".pt", "every core" if every_core == "1" else "defaults"
        return "ultralytics", weights.split("/")[-1].split("-")[0]
    assert cmd[1:4] == ["-m", "yolo_app", "annotate"], cmd
    return "annotate", cmd[cmd.index("--backend") + 1], "no video" if "--no-video" in cmd else "video"


@pytest.fixture
def known_bench(monkeypatch, weights):
    """``bench demo`` on the torch backend, in this process, every measurement known: the commands' times
    (KNOWN_STEPS, three runs each), the bare network at 30 FPS, live mode and INT8 as given here."""
    from yolo_app.bench import run as bench_run
    from yolo_app.bench.int8 import Int8Figures
    from yolo_app.bench.run import BenchSettings, run_bench
    from yolo_app.settings import ModelSettings

    calls = []

    def timed_process(cmd):
        step = known_step(cmd)
        slow = 3 if sum(c == step for c in calls) == 1 else 1  # each step's second run
        calls.append(step)
        known = KNOWN_STEPS[step]
        if step[0] == "ultralytics":
            return ProcessRun(known * slow, 1.0, 300.0, "120\n")
        wall, run_s, first, share, stages, rss = known
        return ProcessRun(wall * slow, 1.0, rss, ANNOTATE_SUMMARY.format(
            run=run_s * slow, first=first * slow, share=share, stages=stages))

    monkeypatch.setattr(bench_run, "timed_process", timed_process)
    monkeypatch.setattr(bench_run, "ExportCache", FakeExports)
    monkeypatch.setattr(bench_run, "bare_fps", lambda detector, input_hw: 30.0)
    monkeypatch.setattr(bench_run, "live_latency", lambda detector, source: {
        "latency_p50_ms": 50.0, "latency_p95_ms": 80.0, "latency_budget_ms": 90.0, "live_frames": 120,
        "live_dropped": 3})
    monkeypatch.setattr(bench_run, "measure_int8", lambda *args: Int8Figures(
        fp32_fps=20.0, int8_fps=30.0, agreement=0.95, per_class={"person": 0.9}, frames=120, boxes=40))
    model = ModelSettings(weights=str(weights), device="cpu", backend="torch")

    def bench(json_out: bool) -> list:
        calls.clear()
        assert run_bench(BenchSettings(source="demo", model=model, runs=3, json=json_out)) == 0
        return list(calls)

    return bench


def test_bench_figures_are_the_known_measurements_of_each_step(known_bench, capsys):
    calls = known_bench(json_out=True)
    assert sorted(set(calls)) == sorted(KNOWN_STEPS) and len(calls) == 3 * len(KNOWN_STEPS)
    r = json.loads(capsys.readouterr().out)
    assert (r["frames"], r["backend"], r["precision"], r["runs"]) == (120, "torch", "fp32", 3)
    assert r["input_hw"] == [384, 640]
    # medians: the slow second runs left out
    assert (r["ultralytics_fps"], r["ultralytics_same_backend_fps"], r["inference_fps"]) == (5.0, 6.0, 30.0)
    assert (r["pipeline_fps"], r["pipeline_novideo_fps"], r["run_fps"], r["run_novideo_fps"]) == (8.0, 10.0, 12.5, 16.0)
    assert r["ratio"] == 1.6  # 8 / 5 FPS: annotate with its video against Ultralytics' defaults
    assert r["ratio_novideo_same_backend"] == 1.667  # 10 / 6
    assert r["equal_terms"] == {"torch": 1.667, "onnx": 1.5, "openvino": 1.667}  # 10/6, 15/10, 20/12
    assert r["equal_terms_fps"] == {"torch": {"yolo_app": 10.0, "ultralytics": 6.0},
                                    "onnx": {"yolo_app": 15.0, "ultralytics": 10.0},
                                    "openvino": {"yolo_app": 20.0, "ultralytics": 12.0}}
    assert (r["efficiency"], r["efficiency_novideo"]) == (0.417, 0.533)  # run FPS 12.5 and 16 over the bare 30
    assert (r["efficiency_whole"], r["efficiency_novideo_whole"]) == (0.267, 0.333)  # 8 and 10 over 30
    assert (r["startup_s"], r["first_result_s"]) == (4.5, 1.5)  # 12 s whole - 7.5 s run, without video
    assert r["peak_rss_mb"] == 900.0  # annotate's own runs on the chosen backend, not the equal-terms ones
    assert (r["network_cpu_share"], r["network_cpu_share_novideo"]) == (0.8, 0.9)
    assert r["stage_cpu_ms"] == {"decode": 1.5, "encode": 3.0}
    assert r["stage_cpu_ms_novideo"] == {"decode": 1.0, "other": 0.5}
    assert (r["latency_p95_ms"], r["live_dropped"], r["int8_speedup"]) == (80.0, 3, 1.5)  # 30 / 20 FPS


def test_bench_table_prints_the_known_measurements(known_bench, capsys):
    known_bench(json_out=False)
    lines = capsys.readouterr().out.splitlines()
    rows = {cells[0]: cells[1:] for cells in (re.split(r" {2,}", line.strip()) for line in lines)}
    assert rows["Ultralytics predict(stream=True), .pt, defaults"] == ["5.0", "1.00x"]
    assert rows["Ultralytics predict(stream=True), torch export"] == ["6.0"]
    assert rows["torch bare inference, 384x640 (the ceiling)"] == ["30.0"]
    assert rows["yolo-app annotate (annotated MP4 + JSONL)"] == ["8.0", "12.5", "1.60x"]
    assert rows["yolo-app annotate --no-video (JSONL)"] == ["10.0", "16.0", "1.67x same backend"]
    assert ("equal terms (annotate --no-video vs Ultralytics predict, same model file, backend and precision, whole "
            "process): torch 1.67x (10.0 vs 6.0 FPS), onnx 1.50x (15.0 vs 10.0 FPS), openvino 1.67x (20.0 vs 12.0 "
            "FPS)") in lines
    assert any(line.startswith("efficiency (run FPS / bare inference FPS): 0.42 with video, 0.53 without; whole "
                               "process 0.27 / 0.33") for line in lines)
    assert any(line.startswith("int8 (OpenVINO, quantized on this video): 30.0 vs fp32 20.0 FPS bare (1.50x); keeps "
                               "95.0% of fp32's boxes") for line in lines)


KNOWN_HEADS = {"nms": {"network_ms": 20.0, "selection_ms": 1.5, "fps": 40.0, "frames": 50},
               "end2end": {"network_ms": 19.0, "selection_ms": 0.25, "fps": 48.0, "frames": 50}}


def test_bench_times_both_heads_of_a_two_head_model_and_passes_its_nms_to_both_programs(
        known_bench, monkeypatch, trained_models, capsys):
    """A YOLO26 has both heads: each is timed on the run's backend (known figures here), and reported; the
    processes timed run the head asked for (--nms false: ours and Ultralytics' predict, nms=False)."""
    from yolo_app.bench import run as bench_run
    from yolo_app.bench.run import BenchSettings, run_bench
    from yolo_app.settings import ModelSettings

    timed_heads = []
    monkeypatch.setattr(bench_run, "head_speed", lambda detector, source: (
        timed_heads.append((detector.model.head, detector.model.backend)) or KNOWN_HEADS[detector.model.head]))
    commands = []
    timed = bench_run.timed_process
    monkeypatch.setattr(bench_run, "timed_process", lambda cmd: commands.append(cmd) or timed(cmd))
    model = ModelSettings(weights=str(trained_models["yolo26n"]), device="cpu", backend="torch", nms="false")
    assert run_bench(BenchSettings(source="demo", model=model, imgsz=160, runs=1, json=True)) == 0
    r = json.loads(capsys.readouterr().out)
    assert sorted(timed_heads) == [("end2end", "torch"), ("nms", "torch")] and r["heads"] == KNOWN_HEADS
    ours = [cmd for cmd in commands if cmd[1:4] == ["-m", "yolo_app", "annotate"]]
    theirs = [cmd for cmd in commands if cmd[1] == "-c" and cmd[3].endswith(".pt")]
    assert ours and all(cmd[cmd.index("--nms") + 1] == "false" for cmd in ours)
    assert theirs and all(cmd[-1] == "false" for cmd in theirs)  # processes.ultralytics_cmd's last: its nms
    assert run_bench(BenchSettings(source="demo", model=model, imgsz=160, runs=1, json=False)) == 0
    assert ("heads (torch, one frame at a time on the same 50 frames): one-to-many head + NMS: network 20.0 ms + "
            "selection 1.50 ms, 40.0 FPS; one-to-one head, NMS-free (top-k): network 19.0 ms + selection 0.25 ms, "
            "48.0 FPS") in capsys.readouterr().out.splitlines()


def test_bench_of_a_one_head_model_times_no_heads(known_bench, capsys):
    known_bench(json_out=True)
    assert "heads" not in json.loads(capsys.readouterr().out)


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
