"""The selection rules behind a click on the video, the table and the class-score bars, on real detections:
the shared YOLOv8n on the shared bottle video (three tracked bottles on a shelf; two sink boxes, too weak
for ByteTrack to track, overlapping them)."""

from __future__ import annotations

import av
import numpy as np
import pytest
import supervision as sv

from conftest import BOTTLE_VIDEO
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.render import detection_labels
from yolo_app.engine.tracking import Tracker
from yolo_app.gui.selection import BoxScores, Selection, box_scores, follow, hit_test, select

FRAMES = 12  # ByteTrack gives the bottles ids from the second frame on: frame 0 has none


@pytest.fixture(scope="module")
def frames(model) -> list[sv.Detections]:
    """Each frame's detections at conf 0.15 (the bottles and the two sink boxes), tracked from frame 0."""
    with av.open(str(BOTTLE_VIDEO)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        images = [f.to_ndarray(format="bgr24") for _, f in zip(range(FRAMES), container.decode(stream))]
    detector = Detector(model, DetectionSettings(conf=0.15))
    tracker = Tracker(rate)
    return [tracker.update(d.boxes, i / rate, i).to_supervision() for i, d in enumerate(detector.detect(images))]


@pytest.fixture(scope="module")
def names(model) -> dict[int, str]:
    return model.names


def rows_of(det: sv.Detections, name: str) -> list[int]:
    return [i for i, n in enumerate(det.data["class_name"]) if n == name]


def area(box) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / (area(a) + area(b) - w * h)


def test_the_frames_have_what_the_rules_are_tested_on(frames):
    first, last = frames[0], frames[-1]
    assert len(rows_of(last, "bottle")) == 3 and len(rows_of(last, "sink")) == 2
    assert first.tracker_id is not None and (first.tracker_id == -1).all()  # not on a track yet
    bottles, sinks = rows_of(last, "bottle"), rows_of(last, "sink")
    assert (last.tracker_id[bottles] > 0).all() and len(set(last.tracker_id[bottles])) == 3
    assert (last.tracker_id[sinks] == -1).all()
    assert "class_probs" in last.data and last.data["class_probs"].shape == (len(last), 80)


# hit-testing a click ---------------------------------------------------------------------------------
def test_a_click_where_boxes_overlap_picks_the_smallest_not_the_first_row(frames):
    det = frames[-1]
    bottle, sinks = rows_of(det, "bottle")[0], rows_of(det, "sink")
    bx1, _, bx2, by2 = det.xyxy[bottle]
    x, y = (bx1 + bx2) / 2, by2 - 3  # the bottle's foot, where the sink boxes reach up
    under = [i for i, (x1, y1, x2, y2) in enumerate(det.xyxy) if x1 <= x <= x2 and y1 <= y <= y2]
    assert bottle in under and any(s in under for s in sinks)
    assert hit_test(det, x, y) == bottle

    # Below the bottles only the two sink boxes overlap: the smaller wins although it is the later row.
    big, small = sorted(sinks, key=lambda i: -area(det.xyxy[i]))
    assert big < small
    x = (max(det.xyxy[big][0], det.xyxy[small][0]) + min(det.xyxy[big][2], det.xyxy[small][2])) / 2
    y = (max(det.xyxy[big][1], det.xyxy[small][1]) + min(det.xyxy[big][3], det.xyxy[small][3])) / 2
    assert y > max(det.xyxy[b][3] for b in rows_of(det, "bottle"))
    assert hit_test(det, x, y) == small


def test_a_box_edge_counts_as_inside_and_empty_space_hits_nothing(frames):
    det = frames[-1]
    right = max(rows_of(det, "bottle"), key=lambda i: det.xyxy[i][0])
    x1, y1, x2, y2 = (float(v) for v in det.xyxy[right])
    assert hit_test(det, x1, y1) == right  # the top-left corner itself
    assert hit_test(det, x2, (y1 + y2) / 2) == right
    assert hit_test(det, x1 - 0.5, y1) is None
    assert hit_test(det, (x1 + x2) / 2, y1 - 0.5) is None


def test_between_equal_boxes_the_earlier_row_wins(frames):
    det = frames[-1]
    bottle = rows_of(det, "bottle")[1]
    twice = det[[bottle, bottle]]  # the same real box twice: equal areas
    x1, y1, x2, y2 = det.xyxy[bottle]
    assert hit_test(twice, (x1 + x2) / 2, (y1 + y2) / 2) == 0


def test_an_empty_frame_has_nothing_to_hit(frames):
    empty = frames[-1][np.zeros(len(frames[-1]), dtype=bool)]
    assert len(empty) == 0 and hit_test(empty, 100.0, 100.0) is None


# following the selection to the next frames -------------------------------------------------------
def test_a_tracked_box_is_followed_by_its_id_when_the_rows_come_in_another_order(frames):
    before, after = frames[-2], frames[-1]
    row = rows_of(before, "bottle")[0]
    chosen = select(before, row)
    assert chosen == Selection(row, int(before.tracker_id[row]))
    reordered = after[np.arange(len(after))[::-1]]
    found = follow(chosen, reordered)
    assert found is not None and found != row
    assert reordered.tracker_id[found] == chosen.track
    assert iou(reordered.xyxy[found], before.xyxy[row]) > 0.8  # the same bottle, one frame on


def test_a_missing_track_selects_nothing_until_it_comes_back(frames):
    det = frames[-1]
    chosen = select(det, rows_of(det, "bottle")[1])
    without = det[det.tracker_id != chosen.track]
    assert len(without) == len(det) - 1 and chosen.row < len(without)  # the row number alone would still match
    assert follow(chosen, without) is None
    assert follow(chosen, det) == chosen.row  # the selection itself stayed: back with its track


def test_with_tracking_switched_off_a_tracked_selection_keeps_its_row(frames):
    det = frames[-1]
    row = rows_of(det, "bottle")[2]
    chosen = select(det, row)
    assert chosen is not None and chosen.track is not None
    untracked = sv.Detections(xyxy=det.xyxy, confidence=det.confidence, class_id=det.class_id, data=det.data)
    assert untracked.tracker_id is None
    assert follow(chosen, untracked) == row
    assert follow(chosen, untracked[:row]) is None  # fewer boxes than the row


def test_a_box_on_no_track_is_followed_by_its_row(frames):
    first, tracked = frames[0], frames[-1]
    chosen = select(first, 1)
    assert chosen == Selection(1, None)  # -1 from ByteTrack is no track
    assert follow(chosen, tracked) == 1
    sink = rows_of(tracked, "sink")[0]
    weak = select(tracked, sink)  # untracked in a tracked frame: by row too, wherever the boxes moved
    assert weak == Selection(sink, None)
    assert follow(weak, tracked[np.arange(len(tracked))[::-1]]) == sink
    assert follow(None, tracked) is None


def test_a_row_the_frame_does_not_have_selects_nothing(frames):
    det = frames[-1]
    assert select(det, len(det)) is None and select(det, -1) is None


# the class-score bars ------------------------------------------------------------------------------
def test_the_bars_show_the_boxs_best_classes_by_the_heads_own_scores(frames, names):
    det = frames[-1]
    row = rows_of(det, "bottle")[2]
    shown = box_scores(det, row, names, 5)
    assert isinstance(shown, BoxScores)
    probs = det.data["class_probs"][row]
    assert len(shown.scores) == 5
    assert shown.scores[0] == ("bottle", pytest.approx(float(det.confidence[row]), abs=1e-5))
    values = [score for _, score in shown.scores]
    assert values == sorted(values, reverse=True) and values[-1] > 0
    by_name = {name: i for i, name in names.items()}
    assert all(score == pytest.approx(float(probs[by_name[name]]), abs=1e-5) for name, score in shown.scores)
    assert sorted(probs, reverse=True)[4] == pytest.approx(values[-1], abs=1e-5)  # no better class left out
    assert shown.heading == detection_labels(det[row:row + 1])[0]
    assert shown.heading.startswith(f"#{det.tracker_id[row]} bottle ")
    assert shown.box == pytest.approx(tuple(det.xyxy[row]))
    assert len(box_scores(det, row, names, 3).scores) == 3


def test_a_model_without_class_scores_shows_the_boxs_own_class_and_score(frames, names):
    det = frames[-1]
    row = rows_of(det, "sink")[0]
    # An end-to-end export that picks its top-k in the graph gives each box its class and score only.
    end_to_end = sv.Detections(xyxy=det.xyxy, confidence=det.confidence, class_id=det.class_id,
                               tracker_id=det.tracker_id, data={"class_name": det.data["class_name"]})
    shown = box_scores(end_to_end, row, names, 5)
    assert shown.scores == (("sink", pytest.approx(float(det.confidence[row]))),)
    assert shown.heading == box_scores(det, row, names, 5).heading
    assert shown.box == pytest.approx(tuple(det.xyxy[row]))
    bare = sv.Detections(xyxy=det.xyxy, confidence=det.confidence, class_id=det.class_id)  # no names either
    assert box_scores(bare, row, names, 5).scores[0][0] == "sink"
