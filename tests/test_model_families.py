"""The models people bring today, on real frames: YOLO11 (NMS head), YOLO26 and YOLOv10 (end-to-end heads),
fine-tuned here (conftest's ``trained_models``), on every CPU backend, and their Ultralytics exports given
as --weights; each compared box for box with Ultralytics' own predict."""

import json
import shutil

import numpy as np
import pytest

from conftest import read_video, run_cli
from test_inference import box_iou
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.models import configure_cpu_threads, load_model

CONF = 0.25
IMGSZ = 160  # the fine-tuned models' training size (tests/trained_models.py)
END_TO_END = {"yolo26n": True, "yolov10n": True, "yolo11n": False}


@pytest.fixture(scope="module")
def frames(clips):
    person, _, _ = read_video(clips["person"])
    bottle, _, _ = read_video(clips["bottle"])
    return person[::3] + bottle[::3]


def ultralytics_predict(weights, frames, *, end2end: bool, **options):
    """Ultralytics' predict as its users call it; ``nms=False`` selects an end-to-end head's one-to-one branch."""
    from ultralytics import YOLO

    yolo = YOLO(str(weights), task="detect")
    extra = {"nms": False} if end2end else {}
    options.setdefault("imgsz", IMGSZ)
    return [yolo.predict(frame, conf=CONF, verbose=False, device="cpu", **extra, **options)[0] for frame in frames]


def assert_same_boxes(ours, theirs, where: str, conf: float = CONF, margin: float = 0.01) -> int:
    """Every box of Ultralytics matched by one of ours (same class, IoU >= 0.99, |dconf| <= 0.01) and none
    left over; only a box within ``margin`` of the threshold may be on one side alone (fp32 rounding of two
    runtimes). Returns the number of matched boxes."""
    unmatched = set(range(len(ours)))
    matched = 0
    for xyxy, score, cls in zip(theirs.boxes.xyxy.cpu().numpy(), theirs.boxes.conf.cpu().numpy(),
                                theirs.boxes.cls.cpu().numpy()):
        candidates = [i for i in unmatched if ours.class_id[i] == int(cls)
                      and box_iou(ours.xyxy[i], xyxy) >= 0.99 and abs(float(ours.confidence[i]) - score) <= 0.01]
        if not candidates:
            assert score <= conf + margin, f"{where}: Ultralytics' box {xyxy} class {int(cls)} {score:.3f} not found"
            continue
        unmatched.remove(max(candidates, key=lambda i: box_iou(ours.xyxy[i], xyxy)))
        matched += 1
    extra = [float(ours.confidence[i]) for i in unmatched]
    assert all(c <= conf + margin for c in extra), f"{where}: boxes Ultralytics does not have: {extra}"
    return matched


@pytest.mark.parametrize("backend", ["torch", "onnx", "openvino"])
@pytest.mark.parametrize("family", ["yolo26n", "yolov10n", "yolo11n"])
def test_each_family_matches_ultralytics_predict_box_for_box_in_fp32(trained_models, frames, family, backend):
    weights = trained_models[family]
    model = load_model(str(weights), "cpu", backend=backend, precision="fp32")
    configure_cpu_threads(model)
    assert model.head == ("end2end" if END_TO_END[family] else "nms")
    detector = Detector(model, DetectionSettings(conf=CONF, imgsz=IMGSZ))
    theirs = ultralytics_predict(weights, frames, end2end=END_TO_END[family])
    matched = sum(assert_same_boxes(detector.detect([frame])[0].detections, result, f"{family} {backend} frame {i}")
                  for i, (frame, result) in enumerate(zip(frames, theirs)))
    assert matched >= len(frames)  # real boxes on real frames, not an empty agreement


@pytest.mark.parametrize("family", ["yolo26n", "yolov10n"])
def test_end_to_end_boxes_keep_the_score_vector_of_the_candidate_they_came_from(trained_models, frames, family):
    model = load_model(str(trained_models[family]), "cpu", backend="torch")
    detector = Detector(model, DetectionSettings(conf=CONF, imgsz=IMGSZ, grid=True))
    boxes = 0
    for frame in frames:
        found = detector.detect([frame])[0]
        det = found.detections
        probs = det.data["class_probs"]
        assert probs.shape == (len(det), len(model.names))
        # the kept score is that candidate's score for the kept class (one candidate may give a box per class)
        assert np.allclose(probs[np.arange(len(det)), det.class_id], det.confidence, atol=1e-5)
        assert found.counts.head == "end2end" and found.counts.kept == len(det)
        assert found.counts.candidates == found.grid.scores.shape[0] >= found.counts.above_conf >= found.counts.kept
        boxes += len(det)
    assert boxes > 0


@pytest.mark.parametrize("family", ["yolo26n", "yolov10n"])
def test_max_det_and_class_filters_apply_as_in_ultralytics_on_end_to_end_heads(trained_models, frames, family):
    weights = trained_models[family]
    model = load_model(str(weights), "cpu", backend="torch")
    detector = Detector(model, DetectionSettings(conf=CONF, imgsz=IMGSZ, max_det=2, classes=(0,)))
    theirs = ultralytics_predict(weights, frames, end2end=True, max_det=2, classes=[0])
    for i, (frame, result) in enumerate(zip(frames, theirs)):
        ours = detector.detect([frame])[0].detections
        assert len(ours) <= 2 and set(ours.class_id) <= {0}
        assert_same_boxes(ours, result, f"{family} frame {i}")


@pytest.fixture
def openvino_fp32_everywhere(monkeypatch):
    """Ultralytics compiles OpenVINO models in the runtime's default precision (bf16 on AMX/AVX512-BF16 CPUs);
    ours runs fp32 when asked. Equal terms: fp32 for Ultralytics' compile too."""
    import openvino as ov

    compile_model = ov.Core.compile_model

    def fp32(self, model, device_name=None, config=None, **kwargs):
        config = {**(config or {}), "INFERENCE_PRECISION_HINT": ov.Type.f32}
        return compile_model(self, model, device_name, config, **kwargs)

    monkeypatch.setattr(ov.Core, "compile_model", fp32)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
@pytest.mark.parametrize("family", ["yolo26n", "yolo11n"])
def test_an_ultralytics_export_given_as_weights_runs_as_exported(trained_models, frames, tmp_path, family, backend,
                                                                 openvino_fp32_everywhere):
    from ultralytics import YOLO

    source = tmp_path / f"{family}.pt"
    shutil.copy(trained_models[family], source)
    options = {"nms": False} if END_TO_END[family] else {}  # the end-to-end form Ultralytics' predict runs
    exported = YOLO(str(source)).export(format=backend, imgsz=(128, 160), verbose=False, **options)
    model = load_model(exported, "auto", backend="auto", precision="fp32" if backend == "openvino" else "auto")
    assert (model.backend, model.input_hw, model.exported) == (backend, (128, 160), True)
    assert model.names == YOLO(str(source)).names
    detector = Detector(model, DetectionSettings(conf=CONF))
    theirs = ultralytics_predict(exported, frames, end2end=False, imgsz=None)  # the file says what it is
    matched = sum(assert_same_boxes(detector.detect([frame])[0].detections, result, f"{family} {backend} {i}")
                  for i, (frame, result) in enumerate(zip(frames, theirs)))
    assert matched >= len(frames) // 2


def test_annotate_says_which_head_runs_in_the_summary_and_the_record(trained_models, clips, tmp_path):
    proc = run_cli("annotate", str(clips["person"]), "--weights", str(trained_models["yolo26n"]), "--backend",
                   "onnx", "--imgsz", str(IMGSZ), "--max-frames", "5", "--no-video", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "end-to-end head (top-k, no NMS)" in proc.stdout
    header = json.loads((tmp_path / "person.detections.jsonl").read_text().splitlines()[0])
    assert (header["head"], header["backend"]) == ("end2end", "onnx")


@pytest.mark.usefixtures("isolated_qt_settings")
def test_the_window_says_the_end_to_end_head_runs_and_its_grid_counts_read_top_k(qtbot, open_window, trained_models):
    from PyQt6.QtCore import Qt

    from test_gui import show_frame_at

    window = open_window(weights=str(trained_models["yolo26n"]), backend="torch")
    label = window.status_bar.labels["device"]  # refreshed every half second with the other figures
    qtbot.waitUntil(lambda: label.text() != "", timeout=10000)
    assert label.text() == "cpu · torch fp32, end-to-end head (top-k, no NMS)"
    qtbot.keyClick(window, Qt.Key.Key_G)
    shown = show_frame_at(qtbot, window, 1.5)
    assert shown.result.counts.head == "end2end"
    assert window.grid_panel.counts.text() == (f"5040 candidates > {shown.result.counts.above_conf} above conf > "
                                               f"{len(shown.result.detections)} kept (top-k, no NMS)")


def test_an_export_and_a_contradicting_backend_is_one_line(trained_models, tmp_path):
    from ultralytics import YOLO

    source = tmp_path / "yolo11n.pt"
    shutil.copy(trained_models["yolo11n"], source)
    exported = YOLO(str(source)).export(format="onnx", imgsz=IMGSZ, verbose=False)
    proc = run_cli("annotate", "demo", "--weights", exported, "--backend", "openvino", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("is an ONNX file: it runs on --backend onnx (or auto), "
                                                         "not openvino")
    assert "Traceback" not in proc.stderr


class _Boxes:
    """A JSONL frame line's detections in the shape ``assert_same_boxes`` reads."""

    def __init__(self, line: dict) -> None:
        items = line["detections"]
        self.xyxy = np.array([d["xyxy"] for d in items], float).reshape(-1, 4)
        self.confidence = np.array([d["confidence"] for d in items], float)
        self.class_id = np.array([d["class_id"] for d in items], int)

    def __len__(self) -> int:
        return len(self.class_id)


@pytest.mark.slow
def test_annotate_with_default_settings_matches_ultralytics_predict_on_the_same_video(weights, tmp_path):
    """Decoding included: our reader and Ultralytics' read the same file; the record is compared frame by frame.
    fp32 must agree box for box; where auto picks bf16 (OpenVINO's default on AMX/AVX512-BF16 CPUs), every
    confident box must still be there, as the README states."""
    from ultralytics import YOLO

    from conftest import BOTTLE_VIDEO, frame_lines

    frames = 150
    proc = run_cli("annotate", str(BOTTLE_VIDEO), "--weights", str(weights), "--max-frames", str(frames),
                   "--out", str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr
    record = tmp_path / "bottle-detection.detections.jsonl"
    header = json.loads(record.read_text().splitlines()[0])
    ours = frame_lines(record)
    stream = YOLO(str(weights)).predict(str(BOTTLE_VIDEO), stream=True, verbose=False, device="cpu")
    theirs = [result for _, result in zip(range(frames), stream)]
    assert len(ours) == len(theirs) == frames and [line["frame"] for line in ours] == list(range(frames))
    total = matched = 0
    for i, (line, result) in enumerate(zip(ours, theirs)):
        boxes = _Boxes(line)
        if header["precision"] == "fp32":
            matched += assert_same_boxes(boxes, result, f"frame {i}")
            total += len(result.boxes)
            continue
        for xyxy, score, cls in zip(result.boxes.xyxy.numpy(), result.boxes.conf.numpy(), result.boxes.cls.numpy()):
            total += 1
            best = max((box_iou(boxes.xyxy[j], xyxy) for j in range(len(boxes)) if boxes.class_id[j] == int(cls)),
                       default=0.0)
            matched += best >= 0.95
            assert score < 0.45 or best >= 0.9, f"frame {i}: confident box {xyxy} {score:.2f} missing ({best:.2f})"
    assert total > frames  # bottles on every frame
    assert matched >= 0.95 * total, f"{matched} of {total} boxes matched ({header['backend']} {header['precision']})"


@pytest.mark.parametrize("family", ["yolo26n", "yolov10n", "yolo11n"])
def test_a_cpu_runs_the_network_as_a_frozen_graph_with_the_eager_modules_numbers(trained_models, frames, family):
    """On a CPU the PyTorch backend traces each input shape once into a frozen TorchScript graph (no trip
    back to Python between layers): its output must be the eager module's, bit for bit, for every head."""
    from yolo_app.engine.torch_runner import TorchRunner

    model = load_model(str(trained_models[family]), "cpu", backend="torch", precision="fp32")
    detector = Detector(model, DetectionSettings(conf=CONF, imgsz=IMGSZ))
    eager = TorchRunner(model.module, model.device, model.half)
    batch = np.stack([frames[0][:160, :256], frames[1][:160, :256]])  # a stride-aligned batch of two
    frozen = detector.forward(batch)
    assert np.array_equal(frozen, eager(batch))
    detector.detect([frames[0]])
    # a batch runs a frame per stream: one graph per frame shape, whatever the batch
    assert detector.torch_runner.graph_shapes == ((1, 3, 160, 256), (1, 3, 96, 160))
