"""What the head says about each box: full class-score vectors, candidate counts, the grid behind them."""

import json

import numpy as np
import pytest

from conftest import read_video, run_cli
from test_inference import same_terms
from yolo_app.engine.grid import anchor_cell, cell_rect, draw_grid_view, heat_map, level_shapes, to_source
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.record import top_classes


@pytest.fixture(scope="module")
def frames(clips):
    person, _, _ = read_video(clips["person"])
    bottle, _, _ = read_video(clips["bottle"])
    return person[::4] + bottle[::5]


@pytest.fixture(scope="module")
def found(model, frames):
    detector = Detector(model, DetectionSettings(grid=True))
    return [detector.detect([frame])[0] for frame in frames]


def test_each_box_keeps_its_class_score_vector_whose_top_is_its_class(found, model):
    boxes = 0
    for out in found:
        det = out.detections
        probs = det.data["class_probs"]
        assert probs.shape == (len(det), len(model.names))
        for i in range(len(det)):
            assert int(np.argmax(probs[i])) == det.class_id[i]
            assert abs(float(probs[i].max()) - float(det.confidence[i])) <= 1e-4
            boxes += 1
    assert boxes > 20  # real frames, real boxes: people and bottles


def test_scores_are_independent_sigmoids_not_a_softmax(found):
    vectors = np.concatenate([out.detections.data["class_probs"] for out in found])
    assert vectors.min() >= 0 and vectors.max() <= 1
    sums = vectors.sum(axis=1)
    assert np.abs(sums - 1).max() > 0.1  # they do not sum to one: each class is scored on its own


def test_candidate_counts_agree_with_ultralytics_on_the_same_frame(found, frames, ultralytics_yolo, model):
    settings = DetectionSettings()
    for frame, out in zip(frames, found):
        theirs = ultralytics_yolo.predict(frame, verbose=False, **same_terms(model))[0]
        predictor = ultralytics_yolo.predictor
        raw = predictor.inference(predictor.preprocess([frame]))
        raw = (raw[0] if isinstance(raw, (list, tuple)) else raw)[0]
        assert out.counts.candidates == raw.shape[1] == sum(h * w for h, w in level_shapes(
            out.grid.letterbox.input_hw, out.grid.strides))
        assert out.counts.above_conf == int((raw[4:].amax(0) > settings.conf).sum())
        assert out.counts.kept == len(theirs.boxes) == len(out.detections)
        assert out.counts.above_conf >= out.counts.kept


def test_the_grid_follows_the_strides_and_the_letterbox(found, model):
    out = found[0]  # 768x432 -> letterboxed to 384x640
    grid = out.grid
    assert grid.strides == model.strides == (8, 16, 32)
    assert grid.letterbox.input_hw == (384, 640)
    assert level_shapes(grid.letterbox.input_hw, grid.strides) == [(48, 80), (24, 40), (12, 20)]
    assert grid.scores.shape == (5040,)
    # 768x432 scales to 640x360 and is padded by 12 rows above and below: the picture's corners map back.
    assert (grid.letterbox.top, grid.letterbox.bottom) == (12, 12)
    assert to_source(0, 12, grid.letterbox, 768, 432) == (0, 0)
    assert to_source(640, 372, grid.letterbox, 768, 432) == pytest.approx((768, 432))
    assert anchor_cell(0, (384, 640), grid.strides) == (8, 0, 0)
    assert anchor_cell(3840, (384, 640), grid.strides) == (16, 0, 0)
    assert anchor_cell(5039, (384, 640), grid.strides) == (32, 11, 19)


def test_each_box_comes_from_an_outlined_cell_whose_centre_is_inside_it(found, frames):
    """YOLOv8/v9 are anchor-free: a cell predicts the distances from its centre to the box's four
    sides, so the predicting cell's centre always lies inside its box (the box's own centre need not
    fall in that cell, unlike in YOLOv1-v3). Its score is the box's confidence."""
    checked = 0
    for frame, out in zip(frames, found):
        grid, det = out.grid, out.detections
        height, width = frame.shape[:2]
        for xyxy, anchor, conf in zip(det.xyxy, det.data["anchor"], det.confidence):
            stride, row, col = anchor_cell(int(anchor), grid.letterbox.input_hw, grid.strides)
            x1, y1, x2, y2 = cell_rect(stride, row, col, grid.letterbox, width, height)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            assert xyxy[0] <= cx <= xyxy[2] and xyxy[1] <= cy <= xyxy[3]
            assert grid.scores[int(anchor)] == pytest.approx(float(conf), abs=1e-4)
            checked += 1
    assert checked > 20


def test_the_heat_map_shows_the_chosen_class_and_the_cells_are_drawn(model, frames, found):
    frame = next(f for f, out in zip(frames, found) if len(out.detections))
    best = Detector(model, DetectionSettings(grid=True)).detect([frame])[0]
    bottle = Detector(model, DetectionSettings(grid=True, grid_class=39, grid_stride=16)).detect([frame])[0]
    assert len(best.detections) and bottle.grid.class_id == 39 and bottle.grid.shown_stride == 16
    h, w = frame.shape[:2]
    assert heat_map(best.grid, w, h).max() == pytest.approx(float(best.detections.confidence.max()), abs=1e-4)
    assert heat_map(bottle.grid, w, h).max() < 0.1  # no bottles in that frame
    drawn = draw_grid_view(frame.copy(), best.grid, best.detections, best.counts)
    stride, row, col = anchor_cell(int(best.detections.data["anchor"][0]), best.grid.letterbox.input_hw,
                                   best.grid.strides)
    x1, y1, _, _ = (round(v) for v in cell_rect(stride, row, col, best.grid.letterbox, w, h))
    assert tuple(drawn[y1, x1 + 1]) == (0, 255, 255)  # the outlined cell, in yellow
    assert drawn[:12].mean() < frame[:12].mean()  # the counts banner at the top


def test_top_classes_in_the_jsonl_and_the_grid_overlay_video(clips, tmp_path):
    proc = run_cli("annotate", str(clips["person"]), "--out", str(tmp_path / "a"), "--top-k", "2", "--grid-overlay",
                   "--imgsz", "320")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in (tmp_path / "a" / "person.detections.jsonl").read_text().splitlines()[1:]]
    dets = [d for line in lines for d in line["detections"]]
    assert dets and all(len(d["top_classes"]) == 2 for d in dets)
    assert all(d["top_classes"][0] == [d["class_name"], d["confidence"]] for d in dets)
    assert all(d["top_classes"][0][1] >= d["top_classes"][1][1] for d in dets)
    plain = run_cli("annotate", str(clips["person"]), "--out", str(tmp_path / "b"), "--top-k", "0", "--imgsz", "320")
    assert plain.returncode == 0, plain.stderr
    lines = [json.loads(x) for x in (tmp_path / "b" / "person.detections.jsonl").read_text().splitlines()[1:]]
    assert all("top_classes" not in d for line in lines for d in line["detections"])
    grid, _, _ = read_video(tmp_path / "a" / "person.annotated.mp4")
    boxes, _, _ = read_video(tmp_path / "b" / "person.annotated.mp4")
    assert len(grid) == len(boxes) == 40
    assert np.abs(grid[0].astype(int) - boxes[0].astype(int)).mean() > 3  # grid lines and the counts banner


def test_top_classes_are_sorted_by_score_with_names():
    probs = np.array([0.1, 0.7, 0.05, 0.3], dtype=np.float32)
    assert top_classes(probs, {0: "a", 1: "b", 2: "c", 3: "d"}, 3) == [["b", 0.7], ["d", 0.3], ["a", 0.1]]


@pytest.mark.parametrize("args, message", [
    (["--grid-class", "person"], "--grid-class needs --grid-overlay"),
    (["--grid-overlay", "--grid-class", "unicorn"], "unknown class 'unicorn'"),
    (["--top-k", "-1"], "--top-k must be 0 or more"),
])
def test_bad_grid_options_are_one_line_errors(clips, tmp_path, args, message):
    proc = run_cli("annotate", str(clips["person"]), "--out", str(tmp_path), *args)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
