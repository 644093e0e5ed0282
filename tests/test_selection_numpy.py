"""The head's boxes are chosen in NumPy (engine/heads.py), whatever ran the network: the same boxes as
Ultralytics' PyTorch NMS, equal scores taken in candidate order, and a run on an export never imports torch."""

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from ultralytics.nn.modules.head import Detect
from ultralytics.utils.nms import TorchNMS
from ultralytics.utils.nms import non_max_suppression as ultralytics_nms

from yolo_app.engine.heads import MAX_WH, in_graph_top_k, non_max_suppression, one_to_one_top_k


def _head_output(rng, candidates: int, classes: int, dtype=np.float32) -> np.ndarray:
    """(4 + nc, candidates): centre/size boxes crowded onto a 640x640 input (many overlaps) and distinct scores."""
    centres = rng.uniform(40, 600, (2, candidates))
    sizes = rng.uniform(8, 160, (2, candidates))
    scores = rng.permutation(candidates * classes).reshape(classes, candidates) / (candidates * classes)
    return np.concatenate([centres, sizes, scores]).astype(dtype)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nms_keeps_ultralytics_boxes_in_ultralytics_order(seed, dtype):
    rng = np.random.default_rng(seed)
    pred = _head_output(rng, 2000, 5, dtype)
    if dtype == np.float16:  # fp16 rounds many scores together: ties are the next test's subject
        _, first = np.unique(pred[4:].max(0), return_index=True)
        pred = pred[:, np.sort(first)]
    for conf, iou, classes, max_det in [(0.25, 0.7, None, 300), (0.6, 0.45, (1, 3), 300), (0.1, 0.5, None, 7)]:
        # an fp16 network's output reaches the selection widened to float32 (engine/torch_runner.py)
        ours = non_max_suppression(pred.astype(np.float32), conf, iou, classes, max_det, half=dtype == np.float16)
        [theirs], [anchors] = ultralytics_nms(torch.from_numpy(pred)[None], conf, iou,
                                              classes=list(classes) if classes else None, max_det=max_det,
                                              return_idxs=True)
        theirs = theirs.float().numpy()
        assert len(ours.conf) == len(theirs) > 0
        assert np.array_equal(ours.xyxy, theirs[:, :4]) and np.array_equal(ours.conf, theirs[:, 4])
        assert np.array_equal(ours.cls, theirs[:, 5].astype(int))
        # and each box is the candidate Ultralytics took it from
        assert ours.anchor.tolist() == anchors.view(-1).tolist()


def test_nms_matches_torchvision_suppression_on_overlapping_boxes_of_one_class():
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 200, (500, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(20, 80, (500, 2)).astype(np.float32)], 1)
    scores = rng.permutation(500).astype(np.float32) / 500
    from yolo_app.engine.heads import _nms

    for iou in (0.3, 0.5, 0.7):
        assert np.array_equal(_nms(boxes, scores, iou),
                              TorchNMS.nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy())


def test_equal_scores_are_taken_in_candidate_order():
    """Two overlapping boxes of one class with the very same score (common in bf16): the first candidate
    stays, every time; boxes of equal score come out in candidate order."""
    pred = np.zeros((4 + 2, 6), np.float32)
    pred[:4] = np.array([[100, 100, 50, 50], [102, 101, 50, 50], [300, 300, 40, 40], [500, 500, 40, 40],
                         [301, 300, 40, 40], [200, 500, 30, 30]], np.float32).T
    pred[4] = [0.8, 0.8, 0.0, 0.5, 0.0, 0.5]
    pred[5] = [0.0, 0.0, 0.9, 0.0, 0.9, 0.0]
    kept = non_max_suppression(pred, 0.25, 0.7, None, 300)
    assert kept.anchor.tolist() == [2, 0, 3, 5] and kept.above_conf == 6
    assert kept.cls.tolist() == [1, 0, 0, 0]
    assert kept.xyxy.tolist() == [[280, 280, 320, 320], [75, 75, 125, 125], [480, 480, 520, 520],
                                  [185, 485, 215, 515]]
    assert not np.may_share_memory(kept.xyxy, pred)
    assert non_max_suppression(pred, 0.25, 0.7, (1,), 300).anchor.tolist() == [2]


def test_classes_are_kept_apart_by_ultralytics_own_offset():
    """Class-aware NMS shifts each class's boxes by class * max_wh; ours by the offset Ultralytics' NMS defaults to."""
    assert MAX_WH == inspect.signature(ultralytics_nms).parameters["max_wh"].default


def _ultralytics_end_to_end(pred: np.ndarray, conf: float, classes, max_det: int, half: bool):
    """What Ultralytics' own code keeps from a decoded one-to-one output (4 + nc, candidates), as its predict runs
    it: the Detect head's ``postprocess`` (top-k by ``get_topk_index``, the head's ``max_det`` set to
    max(max_det, 300) as predict sets it), then ``non_max_suppression``'s end-to-end filter. Returns the head's
    rows (x1, y1, x2, y2, score, class), the kept ones and the candidate each came from, all Ultralytics'. (For an
    fp16 network the rows come out float32 all the same: ``postprocess`` concatenates the class column made
    ``.float()``, so predict's score filter compares fp16 scores in float32.)"""
    head = Detect(nc=pred.shape[0] - 4, ch=(16,)).eval()
    head.max_det = max(max_det, 300)  # DetectionPredictor.stream_inference: set_head_attr(max_det=max(max_det, 300))
    t = torch.from_numpy(pred).T[None]  # (1, candidates, 4 + nc), as Detect.forward hands it to postprocess
    t = t.half() if half else t
    with torch.no_grad():
        rows = head.postprocess(t)
        anchors = head.get_topk_index(t[..., 4:], head.max_det)[2][0]
    [kept], [idx] = ultralytics_nms(rows, conf, 0.7, classes=list(classes) if classes else None, max_det=max_det,
                                    end2end=True, return_idxs=True)
    return rows[0], kept.float().numpy(), anchors[idx].numpy()


def _one_to_one_output(rng, candidates: int, nc: int, half: bool) -> np.ndarray:
    """(4 + nc, candidates): corner boxes on a 640x640 input and distinct scores (in fp16 too: bit patterns counting
    down from 1's, so 0.9502 = fp16(0.95) is among them)."""
    pred = np.concatenate([np.sort(rng.uniform(0, 640, (2, 2, candidates)), axis=0).reshape(4, candidates),
                           rng.permutation(candidates * nc).reshape(nc, candidates) / (candidates * nc)]).astype(
        np.float32)
    if half:  # an fp16 network's output, widened exactly to float32 (engine/torch_runner.py)
        patterns = (0x3BFF - rng.permutation(candidates * nc)).astype(np.uint16)
        pred[4:] = patterns.view(np.float16).reshape(nc, candidates)
        pred[:4] = pred[:4].astype(np.float16)
    return pred


@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize("conf, classes, max_det", [(0.95, None, 300), (0.9, (1, 3), 300), (0.5, None, 7),
                                                    (0.98, (2,), 20)])
def test_end_to_end_top_k_keeps_what_ultralytics_detect_head_and_predict_keep(half, conf, classes, max_det):
    pred = _one_to_one_output(np.random.default_rng(3), 3000, 4, half)
    kept = one_to_one_top_k(pred, conf, classes, max_det)
    _, theirs, anchors = _ultralytics_end_to_end(pred, conf, classes, max_det, half)
    assert len(theirs) > 0 and kept.conf.tolist() == theirs[:, 4].tolist()
    assert kept.cls.tolist() == theirs[:, 5].astype(int).tolist()
    assert kept.anchor.tolist() == anchors.tolist()
    assert np.array_equal(kept.xyxy, theirs[:, :4])


@pytest.mark.parametrize("conf, classes, max_det", [(0.95, None, 300), (0.9, (1, 3), 300), (0.5, None, 7)])
def test_an_export_with_its_top_k_in_the_graph_is_filtered_as_ultralytics_predict_filters_it(conf, classes, max_det):
    """The rows an Ultralytics end-to-end export hands over are the Detect head's ``postprocess`` output: predict's
    filter on them is ``non_max_suppression``'s end-to-end branch."""
    pred = _one_to_one_output(np.random.default_rng(5), 3000, 4, False)
    rows, theirs, _ = _ultralytics_end_to_end(pred, conf, classes, max_det, False)
    kept = in_graph_top_k(rows.numpy(), conf, classes, max_det)
    assert len(theirs) > 0 and np.array_equal(kept.xyxy, theirs[:, :4]) and np.array_equal(kept.conf, theirs[:, 4])
    assert kept.cls.tolist() == theirs[:, 5].astype(int).tolist() and set(kept.anchor.tolist()) == {-1}


def test_equal_scores_in_the_top_k_are_taken_in_candidate_order():
    """Ten candidates of one class, every score 0.5 (torch's top-k orders such ties as it happens to): the first
    three candidates, in order."""
    tied = np.zeros((4 + 1, 10), np.float32)
    tied[4] = 0.5
    assert one_to_one_top_k(tied, 0.25, None, 3).anchor.tolist() == [0, 1, 2]


def test_annotate_on_a_cached_export_never_imports_torch(clips, weights, tmp_path):
    """torch is a second of every start: a run whose network is an export (here ONNX Runtime) chooses its
    device and boxes without it, through the real CLI. Only the first start, which exports with
    Ultralytics, needs it."""
    script = ("import sys, json; from yolo_app.cli import main; code = main(sys.argv[1:]); "
              "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules}))")

    def annotate(out: str) -> dict:
        done = subprocess.run([sys.executable, "-c", script, "annotate", str(clips["person"]), "--weights",
                               str(weights), "--backend", "onnx", "--imgsz", "416", "--no-video", "--max-frames", "20",
                               "--out", str(tmp_path / out)], capture_output=True, encoding="utf-8", timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert annotate("first") == {"code": 0, "torch": True}  # exported at 416 for this test: Ultralytics' exporter
    assert annotate("again") == {"code": 0, "torch": False}
    lines = (tmp_path / "again" / f"{clips['person'].stem}.detections.jsonl").read_text().splitlines()
    assert lines == (tmp_path / "first" / f"{clips['person'].stem}.detections.jsonl").read_text().splitlines()
    assert len(lines) == 21 and sum(len(json.loads(line)["detections"]) for line in lines[1:]) > 0
