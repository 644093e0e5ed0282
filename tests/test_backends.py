"""ONNX Runtime and OpenVINO run the same network: parity with Ultralytics, and a cache of exports."""

import json
import logging
import os
import threading
import time

import numpy as np
import pytest
import torch

from conftest import frame_lines, run_cli
from test_inference import assert_same_detections, box_iou
from yolo_app.engine import backends
from yolo_app.engine.backends import ExportCache, resolve_backend
from yolo_app.engine.device import CPU, Device
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.models import configure_cpu_threads, load_model
from yolo_app.errors import UserError

CORES = len(os.sched_getaffinity(0))  # what this process may run on, as the OS says
STREAMS = min(CORES, 4)  # a file's frames in flight: one a core, four at most (engine/runners.py)


@pytest.fixture(scope="module")
def frames(clips):
    from conftest import read_video

    person, _, _ = read_video(clips["person"])
    bottle, _, _ = read_video(clips["bottle"])
    return person[::3] + bottle[::4]


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_each_backend_matches_ultralytics_torch_predictions_on_real_frames(backend, weights, frames,
                                                                         ultralytics_yolo):
    model = load_model(str(weights), "cpu", backend=backend, precision="fp32")
    assert model.backend == backend and model.precision == "fp32"
    detector = Detector(model, DetectionSettings())
    found = 0
    for i, frame in enumerate(frames):
        ours = detector.detect([frame])[0].detections
        assert_same_detections(ours, ultralytics_yolo.predict(frame, verbose=False, device="cpu")[0],
                               where=f"{backend} {i}")
        found += len(ours)
    assert found > 10


@pytest.mark.parametrize("backend,precision", [("openvino", "fp32"), ("openvino", "bf16"), ("onnx", "fp32"),
                                               ("torch", "fp32")])
def test_a_batch_through_the_cpu_streams_equals_single_frames_exactly(weights, frames, backend, precision):
    """Files run through the backend's throughput streams (several frames in flight, each on a share of
    the cores), and a frame that came alone the same numbers, so a record does not depend on how many
    frames happened to be waiting (PyTorch: alone on a stream too, see the next test)."""
    detector = Detector(load_model(str(weights), "cpu", backend=backend, precision=precision))
    person = [f for f in frames if f.shape[:2] == (432, 768)][:6]
    before = {t.ident for t in threading.enumerate()}
    batched = detector.detect(person)
    assert all(out.timings.infer > 0 for out in batched)
    if backend != "openvino":  # OpenVINO's streams are its own threads; the others' are ours, one per stream
        started = [t.name for t in threading.enumerate() if t.ident not in before]
        assert len(started) == STREAMS and all(name.startswith("stream") for name in started)
        detector.stop_streams()  # a job's end: its threads end; the next batch starts them again
        assert not [t for t in threading.enumerate() if t.ident not in before]
        again = detector.detect(person)
        assert all((a.detections.xyxy == b.detections.xyxy).all() for a, b in zip(again, batched))
    for frame, out in zip(person, batched):
        single = detector.detect([frame])[0].detections
        assert (out.detections.class_id == single.class_id).all()
        assert (out.detections.xyxy == single.xyxy).all() and (out.detections.confidence == single.confidence).all()
    assert sum(len(out.detections) for out in batched) > 0



def test_pytorch_runs_single_frames_on_every_core_until_a_batch_came_then_on_its_streams(weights, frames):
    """A live view's frames get every core; once a file's batch has come, every frame of that run goes
    through the streams, a frame alone included, until the run ends: oneDNN's last bits depend on the
    thread count, and a record must not depend on how many frames happened to be waiting."""
    model = load_model(str(weights), "cpu", backend="torch", precision="fp32")
    configure_cpu_threads(model)  # as every front end does: torch gets every core
    live_view, file_run = Detector(model), Detector(model)
    person = [f for f in frames if f.shape[:2] == (432, 768)]  # on 2 cores, 1 in 8 frames differs between counts

    def on_a_new_thread(work):
        seen = []
        thread = threading.Thread(target=lambda: seen.append((work(), torch.get_num_threads())))
        thread.start()
        thread.join()
        return seen[0]

    file_run.detect(person)  # its streams start; their threads set torch's count for threads started later
    assert on_a_new_thread(lambda: None)[1] == CORES // STREAMS
    live, threads = on_a_new_thread(lambda: live_view.detect(person[:1])[0])
    assert threads == CORES  # put back for the live view's frame
    alone, _ = on_a_new_thread(lambda: [file_run.detect([frame])[0] for frame in person])
    for one, batched in zip(alone, file_run.detect(person)):
        assert np.array_equal(one.detections.xyxy, batched.detections.xyxy)
        assert np.array_equal(one.detections.confidence, batched.detections.confidence)
    assert len(live.detections) == len(alone[0].detections)
    file_run.stop_streams()  # the run is over: a live view on the same detector gets every core again
    assert on_a_new_thread(lambda: file_run.detect(person[:1]))[1] == CORES


def test_the_second_start_reuses_the_export_and_a_damaged_one_is_rebuilt(weights, tmp_path, caplog, monkeypatch):
    exports = []
    real_export = ExportCache._export

    def counting(self, *args):
        exports.append(args[1])
        return real_export(self, *args)

    monkeypatch.setattr(ExportCache, "_export", counting)
    cache = ExportCache(weights, tmp_path)
    first = cache.get("onnx", (384, 640))
    again = ExportCache(weights, tmp_path).get("onnx", (384, 640))
    assert first == again and exports == ["onnx"]  # the second start found it
    assert first.is_file() and str(first).startswith(str(tmp_path))
    assert not list(weights.parent.glob("*.onnx"))  # nothing written beside the user's weights

    first.write_bytes(first.read_bytes()[:1000])  # a half-written or damaged file
    with caplog.at_level(logging.WARNING):
        rebuilt = ExportCache(weights, tmp_path).get("onnx", (384, 640))
    assert exports == ["onnx", "onnx"] and "damaged" in caplog.text
    assert rebuilt.stat().st_size > 1_000_000
    other_shape = ExportCache(weights, tmp_path).entry("onnx", (352, 640), 1, False)
    assert other_shape != first.parent  # keyed by input shape (and precision, batch, model hash)


SLOWER_S = 0.3  # a frame: several times yolov8n's whole time at 320x320 on any CPU, so the ranking is known


class Slowed:
    """A backend's runner made slower by a known delay a frame, one way a run feeds it: ``single`` (one frame at a
    time) or ``streams``."""

    def __init__(self, runner, way: str) -> None:
        self.runner, self.way = runner, way

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.way == "single":
            time.sleep(SLOWER_S * batch.shape[0])
        return self.runner(batch)

    def stream(self, frames):
        for out in self.runner.stream(frames):
            if self.way == "streams":
                time.sleep(SLOWER_S)
            yield out

    def stop_streams(self) -> None:
        self.runner.stop_streams()


def slow_down(monkeypatch, **ways: str) -> None:
    """Backends' runners slowed one way each (``openvino="single"``): the other backend must win that way."""
    real = backends.make_runner

    def make_runner(backend, *args):
        runner = real(backend, *args)
        return Slowed(runner, ways[backend]) if backend in ways else runner

    monkeypatch.setattr(backends, "make_runner", make_runner)


def test_auto_times_openvino_and_onnx_once_both_ways_and_keeps_the_faster_of_each(weights, tmp_path, monkeypatch):
    """OpenVINO made slower on single frames and ONNX Runtime through the streams: the winners are known before
    anything is timed, and differ between the two ways."""
    monkeypatch.setenv("YOLO_APP_CACHE", str(tmp_path))
    slow_down(monkeypatch, openvino="single", onnx="streams")
    assert resolve_backend("auto", CPU, weights, (320, 320)) == "onnx"
    [record] = (tmp_path / "exports").glob("*/auto-cpu-320x320*.json")  # -bf16 where OpenVINO runs bfloat16
    timed = json.loads(record.read_text())["ms"]
    for way in ("single", "streams"):
        assert set(timed[way]) == {"openvino", "onnx"} and all(ms > 0 for ms in timed[way].values())
    # Choosing exported once: OpenVINO was timed on the ONNX file, no OpenVINO model was made only to be timed.
    assert [p.name for p in (tmp_path / "exports").glob("*/*") if p.is_dir()] == ["onnx-320x320-b1-fp32"]
    monkeypatch.setattr(backends, "make_runner", lambda *a: pytest.fail("timed again"))
    assert resolve_backend("auto", CPU, weights, (320, 320)) == "onnx"  # remembered: the second start is instant
    assert resolve_backend("auto", CPU, weights, (320, 320), streamed=True) == "openvino"


def test_a_record_from_before_streams_were_timed_is_timed_again(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_APP_CACHE", str(tmp_path))
    resolve_backend("auto", CPU, weights, (320, 320))
    [record] = (tmp_path / "exports").glob("*/auto-cpu-320x320*.json")
    record.write_text(json.dumps({"backend": "onnx", "ms": {"openvino": 9.0, "onnx": 8.0}}))  # the old form
    slow_down(monkeypatch, onnx="streams")  # the old record's winner now loses through the streams
    assert resolve_backend("auto", CPU, weights, (320, 320), streamed=True) == "openvino"
    assert set(json.loads(record.read_text())["fastest"]) == {"single", "streams"}


def test_a_first_auto_run_exports_once_at_the_size_it_runs(weights, clips, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_APP_CACHE", str(tmp_path / "cache"))
    proc = run_cli("annotate", str(clips["person"]), "--weights", str(weights), "--backend", "auto", "--device", "cpu",
                   "--no-video", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    # 768x432 frames at imgsz 640 run a 384x640 network: timed and run on that one export.
    assert proc.stderr.count("exporting") == 1 and "to onnx for 384x640 input" in proc.stderr
    [model_dir] = (tmp_path / "cache" / "exports").iterdir()
    [record] = model_dir.glob("auto-cpu-384x640*.json")
    assert sorted(p.name for p in model_dir.iterdir()) == sorted([record.name, "onnx-384x640-b1-fp32",
                                                                  "model.json"])
    chosen = json.loads(record.read_text())["fastest"]["streams"]  # a file's frames run through the streams
    assert f"with {chosen} " in proc.stdout
    assert len(frame_lines(tmp_path / "out" / "person.detections.jsonl")) == 40

    # Where the two ways rank the backends differently, a file run takes the streams' winner, and a run that
    # hands over one frame at a time (--batch 1, as a live view) the single frames' one.
    other = {"onnx": "openvino", "openvino": "onnx"}[chosen]
    facts = json.loads(record.read_text())
    for streams, single in ((chosen, other), (other, chosen)):
        record.write_text(json.dumps({**facts, "fastest": {"single": single, "streams": streams}}))
        for batch, expected in ((), streams), (("--batch", "1"), single):
            proc = run_cli("annotate", str(clips["person"]), "--weights", str(weights), "--device", "cpu",
                           "--max-frames", "4", "--no-video", "--out", str(tmp_path / "out"), *batch)
            assert proc.returncode == 0 and f"with {expected} " in proc.stdout, (batch, proc.stdout, proc.stderr)
    assert "timing" not in proc.stderr


def test_a_start_that_runs_a_cached_export_does_not_unpickle_the_checkpoint(weights, frames, tmp_path, monkeypatch):
    """What the checkpoint says of itself (names, strides, head) is kept beside its exports from a safe
    read, so the next start on an exported backend opens no pickle; PyTorch, and a file that was only
    read because the user trusted it, still read the checkpoint."""
    from yolo_app.engine import models

    real_load_network = models.load_network

    def no_unpickling(path, trust=False):
        raise AssertionError(f"{path} was unpickled")

    monkeypatch.setenv("YOLO_APP_CACHE", str(tmp_path / "safe"))
    first = load_model(str(weights), "cpu", backend="onnx")
    monkeypatch.setattr(models, "load_network", no_unpickling)
    again = load_model(str(weights), "cpu", backend="onnx")
    assert (again.names, again.strides, again.head) == (first.names, first.strides, first.head)
    assert again.module is None
    found = 0
    for ours, theirs in zip(Detector(again).detect(frames[:8]), Detector(first).detect(frames[:8])):
        ours, theirs = ours.detections, theirs.detections
        assert (ours.xyxy == theirs.xyxy).all() and (ours.class_id == theirs.class_id).all()
        found += len(ours)
    assert found > 0
    with pytest.raises(AssertionError, match="was unpickled"):
        load_model(str(weights), "cpu", backend="torch")

    monkeypatch.setenv("YOLO_APP_CACHE", str(tmp_path / "trusted"))
    monkeypatch.setattr(models, "load_network", real_load_network)
    load_model(str(weights), "cpu", backend="onnx", trust=True)
    monkeypatch.setattr(models, "load_network", no_unpickling)
    with pytest.raises(AssertionError, match="was unpickled"):
        load_model(str(weights), "cpu", backend="onnx")


def test_named_backends_are_checked(monkeypatch):
    assert resolve_backend("torch", CPU) == "torch"
    with pytest.raises(UserError, match="needs an NVIDIA GPU"):
        monkeypatch.setattr(backends, "installed", lambda name: True)
        resolve_backend("tensorrt", CPU)
    monkeypatch.setattr(backends, "installed", lambda name: name != "openvino")
    assert resolve_backend("auto", CPU) == "onnx"  # without OpenVINO installed
    with pytest.raises(UserError, match="pip install openvino"):
        resolve_backend("openvino", CPU)
    with pytest.raises(UserError, match="unknown backend"):
        resolve_backend("coreml", CPU)
    with pytest.raises(UserError, match="runs on the CPU"):
        resolve_backend("onnx", Device("cuda", 0))


def test_annotate_says_which_backend_ran_and_records_it(clips, tmp_path):
    import json

    from conftest import run_cli

    proc = run_cli("annotate", str(clips["bottle"]), "--out", str(tmp_path), "--no-video", "--backend", "onnx")
    assert proc.returncode == 0, proc.stderr
    assert "with onnx" in proc.stdout
    header = json.loads((tmp_path / "bottle.detections.jsonl").read_text().splitlines()[0])
    assert header["backend"] == "onnx"
    proc = run_cli("annotate", str(clips["bottle"]), "--out", str(tmp_path), "--backend", "tensorrt")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "tensorrt" in proc.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_half_precision_matches_ultralytics_on_real_frames(weights, frames, ultralytics_yolo):
    detector = Detector(load_model(str(weights), "cuda"))
    assert detector.model.half
    found = 0
    for i, frame in enumerate(frames):
        ours = detector.detect([frame])[0].detections
        theirs = ultralytics_yolo.predict(frame, half=True, device="cuda:0", verbose=False)[0]  # same precision
        assert_same_detections(ours, theirs, where=f"cuda fp16 {i}")
        found += len(ours)
    assert found > 10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batches_through_pinned_memory_equal_single_frames(weights, frames):
    detector = Detector(load_model(str(weights), "cuda"))
    for _ in range(2):  # the second pass reuses the pinned staging buffers
        batched = detector.detect(frames[:4])
    for frame, out in zip(frames[:4], batched):
        single = detector.detect([frame])[0].detections
        assert (out.detections.class_id == single.class_id).all()
        assert abs(out.detections.xyxy - single.xyxy).max(initial=0) < 0.5


def assert_bf16_close(detector, frames, predict, min_boxes=20):
    """Every box of the reference at >= 0.45 (near the 0.25 threshold a box may come or go in bfloat16:
    that is the trade) found with the same class; IoU at least 0.94, median at least 0.98."""
    ious = []
    for frame in frames:
        ours = detector.detect([frame])[0].detections
        theirs = predict(frame).boxes
        for xyxy, conf, cls in zip(theirs.xyxy.numpy(), theirs.conf.numpy(), theirs.cls.numpy()):
            if conf < 0.45:
                continue
            same = [box_iou(ours.xyxy[i], xyxy) for i in range(len(ours)) if ours.class_id[i] == int(cls)]
            assert same, f"{int(cls)} {xyxy} ({conf:.2f}) lost in bf16"
            ious.append(max(same))
    assert len(ious) >= min_boxes and min(ious) >= 0.94 and sorted(ious)[len(ious) // 2] >= 0.98


def test_bf16_keeps_every_confident_box_of_pytorch_within_a_pixel_or_so(weights, frames, ultralytics_yolo):
    # Measured on these frames: IoU min 0.957, median 0.993 (fp32 gives >= 0.99 for every box); on 763
    # frames of both videos, 97 % of all boxes at >= 0.98.
    detector = Detector(load_model(str(weights), "cpu", backend="openvino", precision="bf16"))
    assert detector.model.bf16
    assert_bf16_close(detector, frames, lambda f: ultralytics_yolo.predict(f, verbose=False, device="cpu")[0])


def test_auto_precision_on_openvino_is_the_runtime_default_as_in_ultralytics_own_openvino_runs(weights, frames):
    """Equal terms: the same export, the runtime's default precision (bf16 on CPUs with AMX, else f32)."""
    import openvino as ov
    from ultralytics import YOLO

    model = load_model(str(weights), "cpu", backend="openvino")
    exported = ExportCache(weights).get("openvino", (384, 640))
    # What OpenVINO itself compiles this network in when nobody names a precision (as in Ultralytics' runs).
    default = ov.Core().compile_model(next(exported.glob("*.xml")), "CPU").get_property("INFERENCE_PRECISION_HINT")
    assert model.bf16 == (default == ov.Type.bf16) and model.precision == ("bf16" if model.bf16 else "fp32")
    person = [f for f in frames if f.shape[:2] == (432, 768)]
    theirs = YOLO(str(exported), task="detect")
    predict = lambda f: theirs.predict(f, imgsz=(384, 640), verbose=False)[0]  # noqa: E731
    if model.bf16:  # both bfloat16, rounded at different places (we feed uint8 pixels, Ultralytics floats)
        assert_bf16_close(Detector(model), person, predict, min_boxes=5)
    else:
        for i, frame in enumerate(person):
            assert_same_detections(Detector(model).detect([frame])[0].detections, predict(frame), where=str(i))


def test_bf16_needs_openvino():
    with pytest.raises(UserError, match="bf16 runs on OpenVINO on a CPU"):
        load_model("yolov8n.pt", "cpu", backend="torch", precision="bf16")
