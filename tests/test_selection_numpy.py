"""The head's boxes are chosen in NumPy (engine/heads.py), whatever ran the network: the same boxes as
Ultralytics' PyTorch NMS, equal scores taken in candidate order, and a run on an export never imports torch."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from ultralytics.utils.nms import TorchNMS
from ultralytics.utils.nms import non_max_suppression as ultralytics_nms

from yolo_app.engine.heads import MAX_WH, non_max_suppression, one_to_one_top_k


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
        theirs = ultralytics_nms(torch.from_numpy(pred)[None], conf, iou, classes=list(classes) if classes else None,
                                 max_det=max_det)[0].float().numpy()
        assert len(ours.conf) == len(theirs) > 0
        assert np.array_equal(ours.xyxy, theirs[:, :4]) and np.array_equal(ours.conf, theirs[:, 4])
        assert np.array_equal(ours.cls, theirs[:, 5].astype(int))
        # and each box is its candidate's own
        assert np.array_equal(pred[4:, ours.anchor].argmax(0), ours.cls)


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
    assert kept.anchor.tolist() == [2, 0, 3, 5]
    assert kept.cls.tolist() == [1, 0, 0, 0]
    assert not np.may_share_memory(kept.xyxy, pred)
    assert MAX_WH == 7680


@pytest.mark.parametrize("half", [False, True])
def test_end_to_end_top_k_matches_ultralytics_and_breaks_ties_by_candidate(half):
    rng = np.random.default_rng(3)
    candidates, nc = 3000, 4
    pred = np.concatenate([np.sort(rng.uniform(0, 640, (2, 2, candidates)), axis=0).reshape(4, candidates),
                           rng.permutation(candidates * nc).reshape(nc, candidates) / (candidates * nc)]).astype(
        np.float32)
    if half:  # distinct fp16 scores below 1 (bit patterns count down from 1's), 0.9502 = fp16(0.95) among them
        patterns = (0x3BFF - rng.permutation(candidates * nc)).astype(np.uint16)
        pred[4:] = patterns.view(np.float16).reshape(nc, candidates)
    kept = one_to_one_top_k(pred, 0.95, None, 300, half=half)
    # Ultralytics' rule, spelled out with torch: top-k candidates by best score, then top-k (candidate, class) pairs.
    t = torch.from_numpy(pred).half() if half else torch.from_numpy(pred)
    scores = t[4:].T
    first = scores.amax(1).topk(300).indices
    conf, flat = scores[first].flatten().topk(300)
    keep = conf > 0.95  # in fp16 for an fp16 network: fp16(0.95) itself is not above it
    assert keep.sum() > 0 and np.array_equal(kept.conf, conf[keep].float().numpy())
    assert np.array_equal(kept.cls, (flat % nc)[keep].numpy())
    assert np.array_equal(kept.anchor, first[flat // nc][keep].numpy())
    assert np.array_equal(kept.xyxy, pred[:4, kept.anchor].T)

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
