"""`yolo-app monitor` and `yolo-app events`: zones, lines, evidence, webhooks, reconnects, config errors."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.request import urlopen

import av
import cv2
import numpy as np
import pytest
import supervision as sv

from conftest import PERSON_VIDEO, run_cli, wait_for
from mjpeg_server import MjpegCamera, jpeg_frames
from test_zoo import CAR_CLASSES, random_checkpoint  # noqa: F401 - a fixture
from yolo_app.engine.types import Frame
from yolo_app.monitor.cli import parse_since
from yolo_app.monitor.config import Line, Zone, load_config, save_geometry
from yolo_app.errors import UserError
from yolo_app.monitor.events import Event, EventStore, utc_now
from yolo_app.monitor.motion import MotionGate
from yolo_app.monitor.zones import MEMORY_S, LineCounter, ZoneWatcher

# The person video: six people, one at a time, walk in at the bottom left, stop at the table (their feet
# near (450, 390)), and leave to the right. Looked at once; the tracks agree (six ids, each x 250 -> 730).
TABLE = [[380, 340], [560, 340], [560, 432], [380, 432]]
EXIT = [[620, 432], [620, 300]]  # drawn upwards: walking right crosses it "in"
PEOPLE = 6


def write_config(path, **camera):
    cam = {"name": "hall", "source": str(PERSON_VIDEO), "classes": ["person"], **camera}
    path.write_text(json.dumps({"model": "yolov8n.pt", "conf": 0.4, "storage": str(path.parent / "data"),
                                "cameras": [cam]}))  # JSON is YAML
    return path


# --- zones and lines, unit ---------------------------------------------------------------------------
def tracked(*boxes):
    """Detections with track ids: (track_id, x1, y1, x2, y2) each."""
    arr = np.array([b[1:] for b in boxes], dtype=np.float32).reshape(-1, 4)
    return sv.Detections(xyxy=arr, confidence=np.full(len(boxes), 0.9, np.float32),
                         class_id=np.zeros(len(boxes), int), tracker_id=np.array([b[0] for b in boxes], int),
                         data={"class_name": np.array(["person"] * len(boxes), dtype=object)})


def test_a_zone_counts_an_object_after_min_frames_inside_and_its_leaving():
    watcher = ZoneWatcher(Zone("z", ((100, 100), (200, 100), (200, 200), (100, 200)), min_frames=3))
    inside, outside = (7, 140, 50, 160, 150), (7, 240, 50, 260, 150)  # feet at (150, 150) / (250, 150)
    events = []
    for i, box in enumerate([outside, inside, inside, outside, inside, inside, inside, outside, outside, outside]):
        events += [(i, e.kind) for e in watcher.update(tracked(box), i)]
    assert events == [(6, "enter"), (9, "leave")]  # the two-frame visit at 1-2 was a flicker
    assert (watcher.entered, watcher.left, watcher.occupancy) == (1, 1, 0)


def test_a_track_that_vanishes_inside_a_zone_leaves_it():
    watcher = ZoneWatcher(Zone("z", ((0, 0), (100, 0), (100, 100), (0, 100)), min_frames=1))
    assert [e.kind for e in watcher.update(tracked((3, 40, 10, 60, 50)), 0)] == ["enter"]
    assert watcher.update(tracked(), MEMORY_S) == []
    assert [e.kind for e in watcher.update(tracked(), MEMORY_S + 1)] == ["leave"]


def test_a_line_counts_each_direction_once_and_ignores_passing_its_end():
    counter = LineCounter(Line("l", ((100, 0), (100, 100)), min_frames=2))  # drawn downwards
    feet = [50, 150, 150, 150, 50, 50]  # right, stay, back left
    events = [e.direction for i, x in enumerate(feet) for e in counter.update(tracked((1, x - 5, 0, x + 5, 50)), i)]
    assert events == ["out", "in"]  # downwards line: its right side is the image's left
    wobble = [50, 150, 50, 150, 50]  # never two frames on the other side: standing on the line
    assert not [e for i, x in enumerate(wobble) for e in counter.update(tracked((2, x - 5, 0, x + 5, 50)), 10 + i)]
    below = [50, 150, 150]  # crosses the infinite line far below the segment's end
    assert not [e for i, x in enumerate(below) for e in counter.update(tracked((3, x - 5, 300, x + 5, 400)), 20 + i)]
    assert (counter.crossed_in, counter.crossed_out) == (1, 1)


def test_tracking_goes_on_when_a_looping_file_starts_again():
    from yolo_app.engine.tracking import Tracker
    from yolo_app.engine.types import Boxes

    tracker = Tracker(10)
    ids = []
    for _lap in range(2):
        for i in range(20):  # one box walking right; pts run 0..1.9 s each lap
            x = 100 + 10 * i
            ids.append(int(tracker.update(Boxes.of(tracked((0, x, 100, x + 50, 200))), i / 10, i).tracker_id[0]))
    first, second = ids[:20], ids[20:]
    assert first[5] > 0 and len(set(first[5:])) == 1
    assert second[10] > 0 and len(set(second[10:])) == 1  # tracked again after the jump back in time


# --- motion ------------------------------------------------------------------------------------------
def test_motion_gate_skips_a_still_scene_and_passes_a_person_walking():
    with av.open(str(PERSON_VIDEO)) as container:  # frames 0-59: the empty room; 62 on: someone walks in
        video = [f.to_ndarray(format="bgr24") for _, f in zip(range(110), container.decode(video=0))]
    gate = MotionGate(threshold=0.01, cooldown_s=1.0)
    passed = [gate(Frame("hall", i, i / 10, image, 0.0)) for i, image in enumerate(video)]
    assert passed[0] and not any(passed[15:58])  # the first frame, then nothing moves
    assert all(passed[75:110])  # the walk
    assert 0.3 < gate.skipped_fraction < 0.7


# --- config ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("cameras: [{name: a, source: x, zonez: []}]", "cameras[0].zonez: unknown key 'zonez'; did you mean 'zones'?"),
    ("cameras: [{name: a, source: x, zones: [{name: z, polygon: [[0, 0], [10, 10]]}]}]",
     "cameras[0].zones[0].polygon: needs at least 3 [x, y] points in source-frame pixels"),
    ("cameras: [{name: a, source: x, zones: [{name: z, polygon: [[0, 0], [5, 5], [10, 10]]}]}]",
     "cameras[0].zones[0].polygon: has no area (its points lie on one line)"),
    ("cameras: [{name: a, source: x, lines: [{name: l, points: [[0, 0], [1, 1], [2, 2]]}]}]",
     "cameras[0].lines[0].points: needs exactly 2 [x, y] points in source-frame pixels"),
    ("cameras: [{name: a, source: x, alerts: [{on: zone_entry}]}]", "cameras[0].alerts[0].on: unknown event"),
    ("conf: 1.5\ncameras: [{name: a, source: x}]", "conf: must be between 0.0 and 1.0, not 1.5"),
    ("cameras: [{name: a}]", "cameras[0].source: missing (required)"),
    ("cameras: [{name: a, source: x}, {name: a, source: y}]", "cameras[1].name: camera name 'a' is used twice"),
    ("cameras:\n  - name: a\n   source: x", "line 3: not valid YAML"),
    ("mqtt: {port: 1883}\ncameras: [{name: a, source: x}]", "mqtt.host: missing (required)"),
    ("mqtt: {host: h, topic_prefix: a/+/b}\ncameras: [{name: a, source: x}]",
     "mqtt.topic_prefix: must be topic levels like yolo_app or home/cameras, without + or # or empty levels"),
    ("mqtt: {host: h, password_env: P}\ncameras: [{name: a, source: x}]", "mqtt.password_env: needs mqtt.user"),
    ("mqtt: {host: h, hots: x}\ncameras: [{name: a, source: x}]",
     "mqtt.hots: unknown key 'hots'; did you mean 'host'?"),
    ("mqtt: {host: h}\ncameras: [{name: a/b, source: x}]",
     "cameras[0].name: 'a/b' cannot be an MQTT topic level (no / + #, and not available, events)"),
    ("mqtt: {host: h}\ncameras: [{name: a, source: x, lines: [{name: status, points: [[0, 0], [9, 9]]}]}]",
     "cameras[0].lines[0].name: 'status' cannot be an MQTT topic level"),
])
def test_config_errors_name_the_file_the_field_and_the_problem(tmp_path, text, message):
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_config_error_is_one_line_and_exit_2_from_the_command(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text("cameras: [{name: a, source: x, zones: [{name: z, polygon: [[0, 0], [10, 10]]}]}]")
    proc = run_cli("monitor", "--config", str(path), "--run-for", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"yolo-app: error: {path}: cameras[0].zones[0].polygon: needs at least 3 "
                                   "[x, y] points in source-frame pixels")


def test_an_unknown_class_is_refused_once_the_model_is_known(tmp_path):
    path = write_config(tmp_path / "monitor.yaml", classes=["persn"])
    proc = run_cli("monitor", "--config", str(path), "--run-for", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"yolo-app: error: {path}: cameras[0].classes: unknown class 'persn' for "
                                   "model yolov8n.pt; did you mean 'person'?")
    assert not (tmp_path / "data" / "events.db").exists()


@pytest.mark.parametrize("written, nms", [("", "auto"), ("nms: auto\n", "auto"), ("nms: false\n", "false"),
                                          ("nms: true\n", "true")])
def test_nms_takes_ultralytics_spelling_and_reaches_the_model_settings(tmp_path, written, nms):
    path = tmp_path / "monitor.yaml"
    path.write_text(written + "cameras: [{name: a, source: x}]\n")
    assert load_config(path).model.nms == nms


def test_the_alert_key_on_is_not_read_as_yaml_true(tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text("cameras:\n  - name: a\n    source: x\n    alerts:\n      - on: camera_offline\n")
    assert load_config(path).cameras[0].alerts[0].on == "camera_offline"


def test_saving_geometry_rewrites_the_config_and_keeps_a_backup(tmp_path):
    path = write_config(tmp_path / "monitor.yaml", zones=[{"name": "old", "polygon": TABLE}])
    config = load_config(path)
    new = save_geometry(config, "hall", [Zone("table", ((10, 10), (90, 10), (90, 90)), 4)],
                       [Line("exit", ((5, 5), (5, 50)), 2)])
    assert load_config(path).cameras[0].zones == new.cameras[0].zones == (Zone("table", ((10, 10), (90, 10),
                                                                                          (90, 90)), 4),)
    assert load_config(path).cameras[0].lines[0].points == ((5, 5), (5, 50))
    assert "old" in (tmp_path / "monitor.yaml.bak").read_text()


# --- end to end: the person video ---------------------------------------------------------------------
class Hooks:
    """A local webhook receiver; ``fail_first`` requests get a 500 before it starts answering 200."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict] = []
        self.attempts = 0
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.attempts += 1
                ok = hooks.attempts > fail_first
                if ok:
                    hooks.received.append(json.loads(body))
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_zone_and_line_events_on_the_person_video_match_the_six_people_with_evidence(tmp_path):
    hooks = Hooks(fail_first=2)
    path = write_config(tmp_path / "monitor.yaml", realtime=False, zones=[{"name": "table", "polygon": TABLE}],
                        lines=[{"name": "exit", "points": EXIT}],
                        alerts=[{"on": "zone_enter", "zone": "table", "clip": {"pre": 1, "post": 1}},
                                {"on": "line_cross", "line": "exit", "snapshot": False, "webhook": hooks.url}])
    try:
        proc = run_cli("monitor", "--config", str(path), timeout=600)  # a recording: ends at its end
    finally:
        hooks.close()
    assert proc.returncode == 0, proc.stderr
    store = EventStore(tmp_path / "data" / "events.db", readonly=True)
    events = store.query(camera="hall")
    enters = [e for e in events if e.type == "zone_enter"]
    leaves = [e for e in events if e.type == "zone_leave"]
    crossings = [e for e in events if e.type == "line_cross"]
    assert len(enters) == len(leaves) == len(crossings) == PEOPLE
    assert {e.direction for e in crossings} == {"in"} and {e.zone for e in enters} == {"table"}
    assert len({e.track_id for e in enters}) == PEOPLE  # one person, one track, one event
    for enter, leave in zip(enters, leaves):
        assert enter.track_id == leave.track_id and enter.started_at < leave.started_at
    # Evidence: a snapshot and a clip per zone_enter, none for crossings (snapshot: false).
    for e in enters:
        snapshot = cv2.imread(str(tmp_path / "data" / e.snapshot_path))
        assert snapshot.shape == (432, 768, 3)
        with av.open(str(tmp_path / "data" / e.clip_path)) as clip:
            assert clip.streams.video[0].codec_context.name == "h264" and clip.duration > 0
    assert all(e.snapshot_path is None for e in crossings)
    # The webhook failed twice, then delivered each crossing exactly once.
    assert sorted(h["event"]["track_id"] for h in hooks.received) == sorted(e.track_id for e in crossings)
    assert {h["event"]["type"] for h in hooks.received} == {"line_cross"}
    store.close()


def test_monitor_with_a_second_stage_classifier_records_its_label(clips, model, random_checkpoint, tmp_path):  # noqa: F811
    from yolo_app.monitor.runner import Monitor

    path = write_config(tmp_path / "monitor.yaml", source=str(clips["person"]), realtime=False,
                        alerts=[{"on": "object_seen", "snapshot": False}])
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "classify": str(random_checkpoint), "classify_classes": ["person"],
                                "web": {"port": 0}}))
    monitor = Monitor(load_config(path), model=model)
    monitor.start()
    monitor.wait(120)
    port = monitor.web.port
    status = json.loads(urlopen(f"http://127.0.0.1:{port}/status", timeout=5).read())
    metrics = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    monitor.stop()
    hall = status["cameras"]["hall"]
    assert hall["state"] == "ended" and hall["frames"] == 40 and hall["events_today"] >= 1
    assert f'yolo_app_camera_events_today{{camera="hall"}} {float(hall["events_today"])}' in metrics
    seen = EventStore(tmp_path / "data" / "events.db", readonly=True).query(type="object_seen")
    assert seen and all(e.label == "person" for e in seen)
    names = {e.classification.rsplit(" ", 1)[0] for e in seen}
    assert names <= set(CAR_CLASSES) and all(0 <= float(e.classification.rsplit(" ", 1)[1]) <= 1 for e in seen)


# --- end to end: a camera that drops -------------------------------------------------------------------
@pytest.mark.slow
def test_a_dropped_camera_is_marked_offline_reconnected_and_detection_goes_on(tmp_path):
    camera = MjpegCamera(jpeg_frames(PERSON_VIDEO, 60, start=70), fps=10)  # someone walking in
    camera.start()
    path = write_config(tmp_path / "monitor.yaml", source=camera.url, offline_after=2.0,
                        alerts=[{"on": "object_seen", "classes": ["person"], "clip": {"pre": 1, "post": 60}}])
    proc = subprocess.Popen([sys.executable, "-m", "yolo_app", "monitor", "--config", str(path), "--status-port",
                             "0"], stderr=subprocess.PIPE, text=True)
    db = tmp_path / "data" / "events.db"

    def events(kind):
        if not db.exists():
            return []
        store = EventStore(db, readonly=True)
        try:
            return store.query(type=kind)
        except sqlite3.OperationalError:  # the monitor has created the file but not yet its tables
            return []
        finally:
            store.close()

    try:
        wait_for(lambda: events("object_seen"), 90, "a person before the drop")
        assert not events("camera_offline"), "a camera is not offline while its model warms up"
        camera.stop()
        offline = wait_for(lambda: events("camera_offline"), 15, "camera_offline")
        time.sleep(3.0)  # several seconds without a camera
        back = utc_now()
        camera.start()
        online = wait_for(lambda: events("camera_online"), 15, "camera_online")
        assert offline[0].started_at < back < online[0].started_at
        delay = _epoch(online[0].started_at) - _epoch(back)
        assert delay <= 5.0, f"reconnected {delay:.1f} s after the camera came back"
        outage = events("camera_offline")[0]  # the row spans the outage: last frame before, first frame after
        assert outage.ended_at == online[0].started_at
        assert 3.0 < _epoch(outage.ended_at) - _epoch(outage.started_at) < 3.0 + 2.0 + 5.0
        wait_for(lambda: [e for e in events("object_seen") if e.started_at > online[0].started_at], 30,
                 "detections after the gap")
        proc.send_signal(signal.SIGTERM)  # finishes the open clip (post: 60 s) and exits 0
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
        assert "hall: back after " in proc.stderr.read()  # the log says how long it was dark
    finally:
        if proc.poll() is None:
            proc.kill()
        camera.stop()
    seen = events("object_seen")
    assert all(e.clip_path for e in seen), "SIGTERM must finish the clips still collecting"
    for event in seen:
        with av.open(str(tmp_path / "data" / event.clip_path)) as clip:
            assert sum(1 for _ in clip.decode(video=0)) > 0
            seconds = clip.duration / 1e6
        if event is seen[0]:  # collecting since before the drop: its frames span the gap, in real time
            assert seconds > 5.0


@pytest.mark.slow
def test_reconnects_leak_no_threads(clips, model, tmp_path):
    from yolo_app.monitor.runner import Monitor

    camera = MjpegCamera(jpeg_frames(clips["bottle"], 30), fps=10)
    camera.start()
    path = write_config(tmp_path / "monitor.yaml", source=camera.url, offline_after=1.0, classes=["bottle"])
    monitor = Monitor(load_config(path), model=model)
    hall = monitor.cameras["hall"]
    monitor.start()
    try:
        counts = []
        for _ in range(3):
            frames = hall.frames
            wait_for(lambda: hall.frames > frames + 5, 30, "frames")  # noqa: B023 - read at once
            counts.append(threading.active_count())
            camera.stop()
            wait_for(lambda: hall.state == "offline", 15, "offline")
            camera.start()
        wait_for(lambda: hall.state == "running" and hall.reconnects >= 3, 30, "the third reconnect")
    finally:
        monitor.stop()
        camera.stop()
    assert counts[2] <= counts[0], f"threads while streaming, per connection: {counts}"


def _epoch(iso_time: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()


# --- the events command --------------------------------------------------------------------------------
@pytest.fixture
def event_db(tmp_path):
    store = EventStore(tmp_path / "events.db")
    store.add(Event("door", "zone_enter", started_at="2026-11-20T08:00:00.000Z", label="person", track_id=4,
                    zone="entrance", confidence=0.91, snapshot_path="snapshots/door/1.jpg"))
    store.add(Event("door", "line_cross", started_at="2026-11-25T09:30:00.000Z", label="car", track_id=9,
                    zone="gate", direction="in", confidence=0.8))
    store.add(Event("yard", "camera_offline", started_at="2026-11-26T01:00:00.000Z"))
    store.close()
    return tmp_path / "events.db"


def test_events_list_filters_by_time_camera_and_type(event_db):
    proc = run_cli("events", "list", "--db", str(event_db), "--since", "2026-11-21")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["id", "started_at", "camera", "type"] and len(lines) == 3
    assert "line_cross" in lines[1] and "camera_offline" in lines[2]
    proc = run_cli("events", "list", "--db", str(event_db), "--camera", "door", "--type", "zone_enter")
    assert [ln.split()[3] for ln in proc.stdout.strip().splitlines()[1:]] == ["zone_enter"]


def test_events_export_csv_and_jsonl(event_db, tmp_path):
    proc = run_cli("events", "export", "--db", str(event_db), "--to", "csv", "--out", str(tmp_path / "e.csv"))
    assert proc.returncode == 0, proc.stderr
    import csv

    rows = list(csv.DictReader((tmp_path / "e.csv").open()))
    assert [r["type"] for r in rows] == ["zone_enter", "line_cross", "camera_offline"]
    assert rows[1]["direction"] == "in" and rows[0]["snapshot_path"] == "snapshots/door/1.jpg"
    proc = run_cli("events", "export", "--db", str(event_db), "--to", "jsonl", "--camera", "yard")
    assert [json.loads(ln)["type"] for ln in proc.stdout.splitlines()] == ["camera_offline"]


@pytest.mark.parametrize("args, message", [
    (["--db", "missing.db"], "no events database at missing.db"),
    (["--type", "zone_entr"], "--type zone_entr: unknown event type"),
    (["--since", "yesterday"], "--since yesterday: not a date/time"),
])
def test_events_bad_input_is_one_line(event_db, args, message):
    args = args if args[0] == "--db" else ["--db", str(event_db), *args]
    proc = run_cli("events", "list", *args)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_since_takes_ages_and_dates():
    from datetime import datetime, timezone

    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    assert parse_since("90m", now) == "2026-11-26T10:30:00.000Z"
    assert parse_since("2d", now) == "2026-11-24T12:00:00.000Z"
    assert parse_since("2026-11-26T08:00", now) == "2026-11-26T08:00:00.000Z"
