"""What the monitor may alert on: object filters with a box just inside and just outside each bound, the median
score an object's history must reach, its class from history, stationary objects, loitering, the point of the
box a zone or line watches, and the config's one-line errors for each setting."""

from __future__ import annotations

import json

import numpy as np
import pytest
import supervision as sv

from yolo_app.errors import UserError
from yolo_app.monitor.config import Line, Zone, load_config
from yolo_app.monitor.filters import ObjectFilter, ObjectFilters, held_back, mask_contours
from yolo_app.monitor.objects import ObjectBook
from yolo_app.monitor.zones import LineCounter, ZoneWatcher


def boxes(*rows) -> sv.Detections:
    """(track id, score, x1, y1, x2, y2, class) each."""
    xyxy = np.array([r[2:6] for r in rows], dtype=np.float32).reshape(-1, 4)
    return sv.Detections(xyxy=xyxy, confidence=np.array([r[1] for r in rows], np.float32),
                         class_id=np.zeros(len(rows), int), tracker_id=np.array([r[0] for r in rows], int),
                         data={"class_name": np.array([r[6] for r in rows], dtype=object)})


FRAME = (1000, 500)  # 500,000 px


@pytest.mark.parametrize("setting, inside, outside", [
    ({"min_area": 2000}, (0, 0, 50, 40), (0, 0, 50, 39)),  # 2000 px kept, 1950 held
    ({"max_area": 2000}, (0, 0, 50, 40), (0, 0, 50, 41)),
    ({"min_area": 0.004}, (0, 0, 50, 40), (0, 0, 50, 39)),  # a fraction of the frame: 0.004 x 500,000 = 2000 px
    ({"max_area": 0.004}, (0, 0, 50, 40), (0, 0, 51, 40)),
    ({"min_ratio": 0.5}, (0, 0, 20, 40), (0, 0, 19, 40)),  # width / height
    ({"max_ratio": 0.5}, (0, 0, 20, 40), (0, 0, 21, 40)),
])
def test_each_size_and_shape_bound_keeps_a_box_just_inside_and_holds_one_just_outside(setting, inside, outside):
    filters = ObjectFilters(ObjectFilter(**setting))
    reasons = held_back(boxes((1, 0.9, *inside, "person"), (2, 0.9, *outside, "person")), filters, (), FRAME)
    assert reasons == [None, next(iter(setting))]


def test_min_score_per_class_over_the_camera_wide_value():
    filters = ObjectFilters(ObjectFilter(min_score=0.5), (("car", ObjectFilter(min_score=0.7)),))
    found = boxes((1, 0.5, 0, 0, 9, 9, "person"), (2, 0.49, 0, 0, 9, 9, "person"), (3, 0.7, 0, 0, 9, 9, "car"),
                  (4, 0.69, 0, 0, 9, 9, "car"))
    assert held_back(found, filters, (), FRAME) == [None, "min_score", None, "min_score"]


def test_a_mask_holds_back_the_boxes_whose_bottom_centre_is_inside_it():
    mask = mask_contours((((100, 100), (200, 100), (200, 200), (100, 200)),))
    found = boxes((1, 0.9, 140, 0, 160, 150, "tv"), (2, 0.9, 140, 150, 160, 250, "person"),  # feet in / below
                  (3, 0.9, 0, 100, 120, 150, "dog"))  # box overlaps, feet at x 60: outside
    assert held_back(found, ObjectFilters(), mask, FRAME) == ["mask", None, None]


def test_an_object_counts_once_the_median_of_its_last_ten_scores_reaches_the_threshold():
    book = ObjectBook(ObjectFilters(ObjectFilter(threshold=0.7)))
    confirmed_at = []
    for i, score in enumerate([0.6, 0.6, 0.9, 0.9, 0.5, 0.5]):
        update = book.update(boxes((1, score, 0, 0, 10, 10, "car")), i * 0.1)
        confirmed_at += [i] * len(update.confirmed)
        assert len(update.counted) == (i >= 3)  # medians 0.6, 0.6, 0.6, 0.75: counted from the fourth frame on
    assert confirmed_at == [3]  # once real, always real


def test_frames_an_object_is_missed_in_count_as_zero_in_its_history():
    book = ObjectBook(ObjectFilters(ObjectFilter(threshold=0.5)), memory_s=10.0)
    assert book.update(boxes((1, 0.4, 0, 0, 10, 10, "cat")), 0.0).confirmed == ()  # median 0.4
    for t in (0.1, 0.2):
        book.update(boxes(), t)  # looked at, not found: [0.4, 0, 0]
    for t, expected in ((0.3, ()), (0.4, ()), (0.5, (1,))):  # [.4,0,0,.9] .2; [.4,0,0,.9,.9] .4; +.9: .65
        assert book.update(boxes((1, 0.9, 0, 0, 10, 10, "cat")), t).confirmed == expected


def test_a_tracks_class_is_its_historys_so_a_car_called_a_bus_twice_stays_a_car():
    book = ObjectBook()
    said = [("car", 0.9), ("car", 0.9), ("car", 0.9), ("bus", 0.5), ("bus", 0.6), ("car", 0.8)]
    labels = [book.update(boxes((4, score, 0, 0, 10, 10, name)), i * 0.1).counted.data["class_name"].tolist()
              for i, (name, score) in enumerate(said)]
    assert labels == [["car"]] * 6  # car 2.7 before the bus frames' 1.1
    for i in range(6, 12):  # the detector keeps saying bus: the evidence decides
        book.update(boxes((4, 0.8, 0, 0, 10, 10, "bus")), i * 0.1)
    assert book.get(1).label == "bus"  # bus 1.1 + 4.8 = 5.9 > car 3.5


def test_a_stationary_object_lost_and_found_again_where_it_stood_keeps_its_id():
    book = ObjectBook(stationary_after_s=2.0, memory_s=1.0)
    parked = (100, 100, 200, 160)
    for i in range(30):  # 3 s still
        update = book.update(boxes((1, 0.9, *parked, "car")), i * 0.1)
    assert update.counted.data["stationary"].tolist() == [True] and book.get(1).stationary
    for i in range(30, 80):  # hidden by a van for 5 s: held, not gone
        update = book.update(boxes(), i * 0.1)
        assert update.held == {1}
    update = book.update(boxes((9, 0.9, 102, 101, 201, 161, "car")), 8.0)  # the tracker's new id, the same car
    assert update.counted.tracker_id.tolist() == [1] and update.confirmed == () and update.moved == ()
    moved = [book.update(boxes((9, 0.9, x, 100, x + 100, 160, "car")), t).moved
             for t, x in ((8.1, 120), (8.2, 140), (8.3, 160), (8.4, 180))]  # it drives off: one box away is jitter
    assert moved == [(), (), (1,), ()] and not book.get(1).stationary


def test_an_object_in_motion_lost_for_longer_than_the_memory_is_a_new_object():
    book = ObjectBook(stationary_after_s=2.0, memory_s=1.0)
    book.update(boxes((1, 0.9, 0, 0, 10, 10, "person")), 0.0)
    book.update(boxes(), 1.5)
    assert book.update(boxes((2, 0.9, 0, 0, 10, 10, "person")), 1.6).confirmed == (2,)


def test_zone_loiter_is_raised_once_a_visit():
    watcher = ZoneWatcher(Zone("door", ((0, 0), (100, 0), (100, 100), (0, 100)), min_frames=1, loiter_s=2.0))
    inside, outside = boxes((1, 0.9, 40, 10, 60, 50, "person")), boxes((1, 0.9, 240, 10, 260, 50, "person"))
    kinds = []
    for t, where in [(0, inside), (1, inside), (2.5, inside), (3, inside), (5, inside), (6, outside), (7, inside),
                     (8, inside), (9.5, inside), (12, inside)]:
        kinds += [(t, c.kind) for c in watcher.update(where, t)]
    assert kinds == [(0, "enter"), (2.5, "loiter"), (6, "leave"), (7, "enter"), (9.5, "loiter")]


def test_a_line_watching_the_box_centre_counts_a_car_first_seen_with_its_front_past_the_line():
    line = ((0, 100), (1000, 100))  # across the lane; cars drive down the picture
    car = [(400, y, 480, y + 120) for y in (0, 20, 40, 60, 80)]  # first seen with its front already at 120 > 100
    counts = {}
    for anchor in ("bottom_center", "center"):
        counter = LineCounter(Line("gate", line, min_frames=2, anchor=anchor))
        counts[anchor] = [c.direction for t, box in enumerate(car) for c in counter.update(
            boxes((1, 0.9, *box, "car")), float(t))]
    assert counts == {"bottom_center": [], "center": ["in"]}  # its centre goes 60 -> 140: across, downwards


def test_a_zone_watching_the_top_left_corner():
    zone = Zone("bay", ((0, 0), (100, 0), (100, 100), (0, 100)), min_frames=1, anchor="top_left")
    watcher = ZoneWatcher(zone)
    assert [c.kind for c in watcher.update(boxes((1, 0.9, 50, 50, 300, 300, "car")), 0.0)] == ["enter"]
    assert [c.kind for c in ZoneWatcher(Zone("bay", zone.polygon, 1)).update(
        boxes((1, 0.9, 50, 50, 300, 300, "car")), 0.0)] == []  # its bottom-centre (175, 300) is outside


@pytest.mark.parametrize("camera, message", [
    ({"objects": {"min_area": 5000, "max_area": 100}}, r"cameras\[0\]\.objects\.min_area: min_area 5000 is above"),
    ({"objects": {"filters": {"person": {"min_scor": 0.5}}}},
     r"objects\.filters\.person\.min_scor: unknown key 'min_scor'; did you mean 'min_score'"),
    ({"objects": {"threshold": 1.5}}, r"objects\.threshold: must be between 0\.0 and 1\.0"),
    ({"masks": [[[0, 0], [10, 0]]]}, r"cameras\[0\]\.masks\[0\]: needs at least 3"),
    ({"zones": [{"name": "z", "polygon": [[0, 0], [9, 0], [9, 9]], "anchor": "middle"}]},
     r"zones\[0\]\.anchor: must be one of bottom_center, center"),
    ({"zones": [{"name": "z", "polygon": [[0, 0], [9, 0], [9, 9]]}], "alerts": [{"on": "zone_loiter", "zone": "z"}]},
     r"alerts\[0\]\.zone: zone 'z' has no loiter_s"),
    ({"alerts": [{"on": "line_cross", "required_zones": ["drive"]}]},
     r"alerts\[0\]\.required_zones: no zone named 'drive'"),
    ({"stationary_after": -1}, r"cameras\[0\]\.stationary_after: must be at least 0\.5"),
    ({"track_memory": 0}, r"cameras\[0\]\.track_memory: must be between 0\.1 and 600"),
])
def test_each_setting_has_a_one_line_error(tmp_path, camera, message):
    path = tmp_path / "monitor.yaml"
    path.write_text(json.dumps({"cameras": [{"name": "door", "source": "x.mp4", **camera}]}))
    with pytest.raises(UserError, match=message) as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def test_the_settings_as_documented_load(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(json.dumps({"cameras": [{
        "name": "drive", "source": "x.mp4", "stationary_after": False, "track_memory": 5,
        "objects": {"min_score": 0.5, "filters": {"car": {"min_area": 0.01, "threshold": 0.7}}},
        "masks": [[[0, 0], [100, 0], [100, 50]]],
        "zones": [{"name": "bay", "polygon": [[0, 0], [9, 0], [9, 9]], "loiter_s": 30, "anchor": "center"}],
        "lines": [{"name": "gate", "points": [[0, 5], [9, 5]], "anchor": "center"}],
        "alerts": [{"on": "zone_loiter", "zone": "bay"}, {"on": "line_cross", "required_zones": ["bay"]}]}]}))
    cam = load_config(path).cameras[0]
    assert cam.stationary_after is None and cam.track_memory == 5 and cam.masks == (((0, 0), (100, 0), (100, 50)),)
    assert cam.objects.of("car") == ObjectFilter(min_area=0.01, min_score=0.5, threshold=0.7)  # over the defaults
    assert cam.objects.of("person") == ObjectFilter(min_score=0.5)
    assert (cam.zones[0].loiter_s, cam.zones[0].anchor, cam.lines[0].anchor) == (30, "center", "center")
    assert cam.alerts[1].required_zones == ("bay",)
    assert cam.alerts[1].matches("line_cross", "gate", "car", frozenset({"bay"}))
    assert not cam.alerts[1].matches("line_cross", "gate", "car", frozenset({"street"}))


def test_a_crossing_seen_once_past_the_line_before_leaving_the_picture_counts_a_wobble_does_not():
    counter = LineCounter(Line("exit", ((620, 432), (620, 300)), min_frames=2), memory_s=2.0)
    walk = [(583, 395), (617, 389), (695, 367)]  # a person at 5 fps: one frame past the line, then out of view
    crossings = [c.direction for t, (x, y) in enumerate(walk)
                 for c in counter.update(boxes((1, 0.9, x - 20, y - 150, x + 20, y, "person")), t * 0.2)]
    crossings += [c.direction for c in counter.update(boxes(), 2.0)]  # still there
    crossings += [c.direction for c in counter.update(boxes(), 2.5)]  # gone for longer than the memory
    assert crossings == ["in"] and counter.crossed_in == 1
    wobble = [(610, 400), (630, 400), (610, 400)]  # one frame over, back again, then gone
    assert not [c for t, (x, y) in enumerate(wobble)
                for c in counter.update(boxes((2, 0.9, x - 20, y - 150, x + 20, y, "person")), 10 + t * 0.2)]
    assert counter.update(boxes(), 20.0) == []


@pytest.mark.parametrize("fps", [5, 25])
@pytest.mark.parametrize("looked_at", [1, 5])  # every frame, or every fifth (motion gating, a busy detector)
def test_the_trackers_memory_is_seconds_at_any_frame_rate(fps, looked_at):
    from yolo_app.engine.tracking import Tracker
    from yolo_app.engine.types import Boxes

    still = Boxes(np.array([[100, 0, 150, 100]], np.float32), np.array([0.9], np.float32), np.array([0]), None, {})
    nothing = Boxes(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), None, {})
    kept = {}
    for gap in (1.5, 2.5):  # out of sight for less, and for more, than its memory of 2 s
        tracker, t = Tracker(fps, memory_s=2.0), 0.0
        for _ in range(10):
            before = tracker.update(still, t, None).tracker_id[0]
            t += 1 / fps
        for k in range(round(gap * fps)):
            if k % looked_at == 0:
                tracker.update(nothing, t, None)
            t += 1 / fps
        kept[gap] = tracker.update(still, t, None).tracker_id[0] == before
    assert kept == {1.5: True, 2.5: False}
