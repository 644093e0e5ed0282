"""The models people bring today, on real frames: YOLOv9, YOLO11 and YOLO12 (one head, NMS), YOLO26 and YOLOv10
(two heads: the one-to-many with NMS, which Ultralytics' predict runs by default, and the one-to-one, NMS-free,
with ``nms=False``), trained here (conftest's ``trained_models``), on every CPU backend, and their Ultralytics
exports given as --weights; each compared box for box with Ultralytics' own predict."""

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
TWO_HEADS = ("yolo26n", "yolov10n")
ONE_HEAD = ("yolov9t", "yolo11n", "yolo12n")
# Ultralytics' predict argument nms for each --nms: auto is its default (no argument), false its NMS-free head.
PREDICT_NMS = {"auto": {}, "false": {"nms": False}}
HEAD_CASES = [(family, nms) for family in TWO_HEADS for nms in PREDICT_NMS] + [(f, "auto") for f in ONE_HEAD]


@pytest.fixture(scope="module")
def frames(clips):
    person, _, _ = read_video(clips["person"])
    bottle, _, _ = read_video(clips["bottle"])
    return person[::3] + bottle[::3]


def ultralytics_predict(weights, frames, **options):
    """Ultralytics' predict as its users call it, and the head it ran ("end2end" or "nms"), from its own
    predictor: a release that changes which head runs by default shows here."""
    from ultralytics import YOLO

    yolo = YOLO(str(weights), task="detect")
    options = {"imgsz": IMGSZ, "conf": CONF, **options}
    results = [yolo.predict(frame, verbose=False, device="cpu", **options)[0] for frame in frames]
    return results, "end2end" if yolo.predictor.model.end2end else "nms"


@pytest.fixture(scope="module")
def reference(trained_models, frames):
    """Ultralytics' boxes on ``frames`` and the head it ran, per (family, nms): computed once for every backend."""
    made = {}

    def of(family: str, nms: str):
        if (family, nms) not in made:
            made[family, nms] = ultralytics_predict(trained_models[family], frames, **PREDICT_NMS[nms])
        return made[family, nms]

    return of


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


def assert_matches_most(matched: int, theirs: list, frames: list, where: str) -> None:
    """Not an empty agreement: real boxes on these frames (more than one a frame), and all but the few within
    the threshold's margin matched."""
    total = sum(len(result.boxes) for result in theirs)
    assert total > len(frames), f"{where}: Ultralytics found only {total} boxes on {len(frames)} frames"
    assert matched >= 0.95 * total, f"{where}: {matched} of Ultralytics' {total} boxes matched"


def test_ultralytics_runs_the_one_to_many_head_by_default_on_a_checkpoint_with_both(reference):
    """What the README says of Ultralytics' default (its predict's nms=None on a trained YOLO26 or YOLOv10
    checkpoint); an Ultralytics release that changes it fails here, and the README must follow."""
    assert [reference(family, "auto")[1] for family in TWO_HEADS] == ["nms", "nms"]
    assert [reference(family, "false")[1] for family in TWO_HEADS] == ["end2end", "end2end"]


@pytest.mark.parametrize("backend", ["torch", "onnx", "openvino"])
@pytest.mark.parametrize("family, nms", HEAD_CASES)
def test_each_family_and_head_matches_ultralytics_predict_box_for_box_in_fp32(reference, trained_models, frames,
                                                                              family, nms, backend):
    theirs, their_head = reference(family, nms)
    model = load_model(str(trained_models[family]), "cpu", backend=backend, precision="fp32", nms=nms)
    configure_cpu_threads(model)
    assert model.head == their_head and model.heads == (("nms", "end2end") if family in TWO_HEADS else ("nms",))
    detector = Detector(model, DetectionSettings(conf=CONF, imgsz=IMGSZ))
    where = f"{family} nms={nms} {backend}"
    matched = sum(assert_same_boxes(detector.detect([frame])[0].detections, result, f"{where} frame {i}")
                  for i, (frame, result) in enumerate(zip(frames, theirs)))
    assert_matches_most(matched, theirs, frames, where)


@pytest.mark.parametrize("family", TWO_HEADS)
def test_the_two_heads_of_one_checkpoint_give_different_boxes(reference, family):
    """Not one head compared twice: on these frames the heads disagree somewhere (so each parity above is the
    parity of that head)."""
    nms, free = reference(family, "auto")[0], reference(family, "false")[0]
    differ = sum(len(a.boxes) != len(b.boxes) or not np.allclose(a.boxes.xyxy.numpy(), b.boxes.xyxy.numpy())
                 for a, b in zip(nms, free))
    assert differ > 0


@pytest.mark.parametrize("family", TWO_HEADS)
def test_end_to_end_boxes_keep_the_score_vector_of_the_candidate_they_came_from(trained_models, frames, family):
    model = load_model(str(trained_models[family]), "cpu", backend="torch", nms="false")
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


@pytest.mark.parametrize("family", TWO_HEADS)
@pytest.mark.parametrize("nms", PREDICT_NMS)
def test_max_det_and_class_filters_apply_as_in_ultralytics_on_both_heads(trained_models, frames, family, nms):
    weights = trained_models[family]
    model = load_model(str(weights), "cpu", backend="torch", nms=nms)
    detector = Detector(model, DetectionSettings(conf=CONF, imgsz=IMGSZ, max_det=2, classes=(0,)))
    theirs, _ = ultralytics_predict(weights, frames, max_det=2, classes=[0], **PREDICT_NMS[nms])
    for i, (frame, result) in enumerate(zip(frames, theirs)):
        ours = detector.detect([frame])[0].detections
        assert len(ours) <= 2 and set(ours.class_id) <= {0}
        assert_same_boxes(ours, result, f"{family} nms={nms} frame {i}")


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


EXPORT_CASES = [(family, nms) for family in TWO_HEADS for nms in PREDICT_NMS] + [("yolo11n", "auto")]


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
@pytest.mark.parametrize("family, exported_nms", EXPORT_CASES)
def test_an_ultralytics_export_given_as_weights_runs_as_exported(trained_models, frames, tmp_path, family,
                                                                 exported_nms, backend, openvino_fp32_everywhere):
    """Each kind of export Ultralytics makes (its default, and nms=False: the NMS-free head with its top-k in
    the graph) runs with the head it was exported with, box for box with Ultralytics' predict on that file."""
    from ultralytics import YOLO

    source = tmp_path / f"{family}.pt"
    shutil.copy(trained_models[family], source)
    exported = YOLO(str(source)).export(format=backend, imgsz=(128, 160), verbose=False, **PREDICT_NMS[exported_nms])
    model = load_model(exported, "auto", backend="auto", precision="fp32" if backend == "openvino" else "auto")
    assert (model.backend, model.input_hw, model.exported) == (backend, (128, 160), True)
    assert model.names == YOLO(str(source)).names
    detector = Detector(model, DetectionSettings(conf=CONF))
    theirs, their_head = ultralytics_predict(exported, frames, imgsz=None)  # the file says what it is
    assert model.head == their_head == ("end2end" if exported_nms == "false" else "nms")
    where = f"{family} exported nms={exported_nms} {backend}"
    matched = sum(assert_same_boxes(detector.detect([frame])[0].detections, result, f"{where} {i}")
                  for i, (frame, result) in enumerate(zip(frames, theirs)))
    assert_matches_most(matched, theirs, frames, where)


@pytest.mark.parametrize("nms, head, says", [("auto", "nms", "NMS head"),
                                             ("false", "end2end", "end-to-end head (top-k, no NMS)")])
def test_annotate_says_which_head_runs_in_the_summary_and_the_record(trained_models, clips, tmp_path, nms, head,
                                                                     says):
    proc = run_cli("annotate", str(clips["person"]), "--weights", str(trained_models["yolo26n"]), "--backend",
                   "onnx", "--imgsz", str(IMGSZ), "--max-frames", "5", "--no-video", "--out", str(tmp_path),
                   *(["--nms", nms] if nms != "auto" else []))
    assert proc.returncode == 0, proc.stderr
    assert f"onnx fp32, {says}" in proc.stdout
    header = json.loads((tmp_path / "person.detections.jsonl").read_text().splitlines()[0])
    assert (header["head"], header["backend"]) == (head, "onnx")


def test_resume_takes_a_record_made_with_the_other_head_for_another_run(trained_models, clips, tmp_path):
    """The head is part of what --resume compares: a complete record of the NMS head does not stand for a run of
    the NMS-free one, which is made anew."""
    args = ["annotate", str(clips["bottle"]), "--weights", str(trained_models["yolo26n"]), "--imgsz", str(IMGSZ),
            "--backend", "torch", "--no-video", "--out", str(tmp_path)]
    assert run_cli(*args).returncode == 0
    again = run_cli(*args, "--resume")
    assert again.returncode == 0 and "already complete, skipped" in again.stdout
    other = run_cli(*args, "--resume", "--nms", "false")
    assert other.returncode == 0 and "skipped" not in other.stdout and "30 frames" in other.stdout, other.stdout
    assert json.loads((tmp_path / "bottle.detections.jsonl").read_text().splitlines()[0])["head"] == "end2end"


def test_nms_true_on_an_export_without_the_one_to_many_head_is_one_line(trained_models, tmp_path):
    from ultralytics import YOLO

    source = tmp_path / "yolo26n.pt"
    shutil.copy(trained_models["yolo26n"], source)
    exported = YOLO(str(source)).export(format="onnx", imgsz=IMGSZ, verbose=False, nms=False)
    proc = run_cli("annotate", "demo", "--weights", exported, "--nms", "true", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.endswith("nms true runs the one-to-many head with NMS, and yolo26n.onnx has only its one-to-one "
                         "head (fused, or exported NMS-free); use nms auto"), line


def _boxes_of(result) -> set:
    """Boxes as (class, rounded corners): what two heads' drawings are compared by."""
    return {(int(c), *np.round(xyxy).astype(int)) for c, xyxy in zip(result.class_id, result.xyxy)}


@pytest.mark.usefixtures("isolated_qt_settings")
def test_the_window_head_picker_runs_the_other_head_and_the_grid_counts_follow(qtbot, open_window, trained_models):
    """Ultralytics' default head first (NMS: "after NMS" in the grid's counts), then NMS-free picked in the
    toolbar: the status bar says so, the drawn boxes are that head's (Ultralytics' predict with nms=False on the
    same frame), the grid's counts read top-k, and the choice is remembered for the next window."""
    from PyQt6.QtCore import Qt

    from test_gui import choose, show_frame_at
    from yolo_app.gui.main_window import app_settings

    window = open_window(weights=str(trained_models["yolo26n"]), backend="torch")
    label = window.status_bar.labels["device"]  # refreshed every half second with the other figures
    qtbot.waitUntil(lambda: label.text() == "cpu · torch fp32, NMS head", timeout=10000)
    assert window.model_bar.head_box.isEnabled() and window.model_bar.head_box.currentText() == "auto"
    qtbot.keyClick(window, Qt.Key.Key_G)
    before = show_frame_at(qtbot, window, 1.5)
    assert window.grid_panel.counts.text().endswith(f"> {len(before.result.detections)} after NMS")
    choose(window.model_bar.head_box, "NMS-free")
    qtbot.waitUntil(lambda: label.text() == "cpu · torch fp32, end-to-end head (top-k, no NMS)", timeout=60000)
    shown = show_frame_at(qtbot, window, 1.5)
    assert shown.result.counts.head == "end2end"
    assert window.grid_panel.counts.text() == (f"{shown.result.counts.candidates} candidates > "
                                               f"{shown.result.counts.above_conf} above conf > "
                                               f"{len(shown.result.detections)} kept (top-k, no NMS)")
    theirs, head = ultralytics_predict(trained_models["yolo26n"], [shown.result.frame.image], nms=False,
                                       conf=window.controller.settings.conf, imgsz=window.controller.settings.imgsz)
    assert head == "end2end"
    assert_same_boxes(shown.result.detections, theirs[0], "the window's NMS-free head",
                      conf=window.controller.settings.conf)
    assert _boxes_of(shown.result.detections) != _boxes_of(before.result.detections)  # what is drawn changed
    window.close()
    assert app_settings().value("nms") == "false"


@pytest.mark.usefixtures("isolated_qt_settings")
def test_compare_mode_runs_the_two_heads_of_one_model_side_by_side(qtbot, open_window, trained_models, weights):
    from test_gui import choose

    window = open_window(weights=str(trained_models["yolov10n"]), backend="torch")
    choose(window.model_bar.compare_box, "Compare: other head")
    qtbot.waitUntil(lambda: len(window.controller.detectors) == 2 and window.controller.detectors[1] is not None
                    and 1 in window.last_shown, timeout=60000)
    first, second = (d.model for d in window.controller.detectors)
    assert (first.path, first.head, second.path, second.head) == (second.path, "nms", first.path, "end2end")
    qtbot.waitUntil(lambda: "(NMS-free)" in window.panes[1].caption.text(), timeout=10000)
    assert "(NMS)" in window.panes[0].caption.text()
    # a model with one head offers no other head, and its picker shows the one it runs
    window.model_bar.select_model(str(weights))
    qtbot.waitUntil(lambda: window.controller.detectors[0].model.path == weights, timeout=60000)
    box = window.model_bar.compare_box
    assert not box.model().item(box.findText("Compare: other head")).isEnabled()
    assert not window.model_bar.head_box.isEnabled() and window.model_bar.head_box.currentText() == "NMS"


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


def assert_record_matches_predict(record, theirs: list, frames: int) -> None:
    """An annotate record against Ultralytics' predict on the same file, frame by frame. fp32 must agree box
    for box; where auto picks bf16 (OpenVINO's default on AMX/AVX512-BF16 CPUs), every confident box must still
    be there, as the README states."""
    from conftest import frame_lines

    header = json.loads(record.read_text().splitlines()[0])
    ours = frame_lines(record)
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
    assert total > frames, f"only {total} boxes on {frames} frames"
    assert matched >= 0.95 * total, f"{matched} of {total} boxes matched ({header['backend']} {header['precision']})"


@pytest.mark.slow
def test_annotate_with_default_settings_matches_ultralytics_predict_on_the_same_video(weights, tmp_path):
    """Decoding included: our reader and Ultralytics' read the same file; the record is compared frame by frame."""
    from ultralytics import YOLO

    from conftest import BOTTLE_VIDEO

    frames = 150
    proc = run_cli("annotate", str(BOTTLE_VIDEO), "--weights", str(weights), "--max-frames", str(frames),
                   "--out", str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr
    stream = YOLO(str(weights)).predict(str(BOTTLE_VIDEO), stream=True, verbose=False, device="cpu")
    theirs = [result for _, result in zip(range(frames), stream)]
    assert_record_matches_predict(tmp_path / "bottle-detection.detections.jsonl", theirs, frames)


@pytest.mark.parametrize("family", TWO_HEADS)
def test_annotate_of_a_two_head_model_with_default_settings_matches_ultralytics_predict(trained_models, clips,
                                                                                       tmp_path, family):
    """``yolo-app annotate FILE --weights W`` against ``YOLO(W).predict(FILE)``, both with their defaults (ours at
    the checkpoint's own input size, which Ultralytics' predict takes from the checkpoint): the same head, the
    same boxes."""
    from ultralytics import YOLO

    weights, clip = trained_models[family], clips["bottle"]  # bottles on every frame
    proc = run_cli("annotate", str(clip), "--weights", str(weights), "--imgsz", str(IMGSZ), "--no-video",
                   "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    record = tmp_path / "bottle.detections.jsonl"
    yolo = YOLO(str(weights))
    theirs = list(yolo.predict(str(clip), stream=True, verbose=False, device="cpu"))
    assert yolo.predictor.args.imgsz == IMGSZ and not yolo.predictor.model.end2end
    assert json.loads(record.read_text().splitlines()[0])["head"] == "nms"
    assert_record_matches_predict(record, theirs, 30)


@pytest.mark.parametrize("family, nms", [*((f, nms) for f in TWO_HEADS for nms in PREDICT_NMS), ("yolo11n", "auto")])
def test_a_cpu_runs_the_network_as_a_frozen_graph_with_the_eager_modules_numbers(trained_models, frames, family, nms):
    """On a CPU the PyTorch backend traces each input shape once into a frozen TorchScript graph (no trip
    back to Python between layers): its output must be the eager module's, bit for bit, for every head."""
    from yolo_app.engine.torch_runner import TorchRunner

    model = load_model(str(trained_models[family]), "cpu", backend="torch", precision="fp32", nms=nms)
    detector = Detector(model, DetectionSettings(conf=CONF, imgsz=IMGSZ))
    eager = TorchRunner(model.module, model.device, model.half)
    batch = np.stack([frames[0][:160, :256], frames[1][:160, :256]])  # a stride-aligned batch of two
    frozen = detector.forward(batch)
    assert np.array_equal(frozen, eager(batch))
    detector.detect([frames[0]])
    # a batch runs a frame per stream: one graph per frame shape, whatever the batch
    assert detector.torch_runner.graph_shapes == ((1, 3, 160, 256), (1, 3, 96, 160))
