"""The monitor's MQTT way out against a real broker (Debian's mosquitto, started here): events in the order of
the database, retained counts and state, pictures, commands, Home Assistant discovery, the last will, a
broker away for a minute and a monitor restarted meanwhile, a wrong password, TLS. Every case runs a real
`yolo-app monitor` process on the person video, where one person walks to the table and out to the right."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from conftest import PERSON_VIDEO, make_clip, wait_for
from monitor_process import MonitorProcess
from mqtt_broker import Broker, Subscriber
from test_monitor import EXIT, TABLE
from yolo_app.monitor.events import EXPORT_FIELDS, EventStore

PREFIX = "yolo_app_test"


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """18 s of the person video: the room empty, then one person walks to the table and out to the right."""
    return make_clip(PERSON_VIDEO, tmp_path_factory.mktemp("walk") / "walk.mp4", 180, start=40)


def monitor_config(folder, walk, broker: Broker, *, port: int | None = None, **mqtt) -> object:
    """A monitor.yaml for one camera looping the walk as fast as it can (every loop: the person seen, in and out
    of the table zone, across the exit line), MQTT on ``broker``."""
    path = folder / "monitor.yaml"
    path.write_text(json.dumps({
        "model": "yolov8n.pt", "backend": "torch", "imgsz": 320, "storage": str(folder / "data"),
        "mqtt": {"host": "127.0.0.1", "port": port or broker.port, "topic_prefix": PREFIX, "client_id": "yolo_app-test",
                 **mqtt},
        "cameras": [{"name": "hall", "source": str(walk), "classes": ["person"], "loop": True, "realtime": False,
                     "zones": [{"name": "table", "polygon": TABLE}], "lines": [{"name": "exit", "points": EXIT}],
                     "alerts": [{"on": "zone_enter", "clip": {"pre": 1, "post": 1}}, {"on": "object_seen"}]}]}))
    return path


def rows(folder) -> list:
    """The monitor's event rows, oldest first ([] before it made its database)."""
    try:
        store = EventStore(folder / "data" / "events.db", readonly=True)
    except FileNotFoundError:
        return []
    try:
        return store.query()
    finally:
        store.close()


def published_events(sub: Subscriber) -> list[dict]:
    return [json.loads(m.payload) for m in sub.on(f"{PREFIX}/events")]


def first_of_each(items: list) -> list:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


@pytest.fixture
def broker(tmp_path):
    broker = Broker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


# The entities Home Assistant gets for the test's camera (hall: classes [person], zone table, line exit), by
# component, as its MQTT discovery documentation names them, with the key each cannot do without
# (integrations/binary_sensor.mqtt, sensor.mqtt, camera.mqtt, switch.mqtt, button.mqtt).
ENTITIES = {
    "yolo_app_test_hall_person_occupancy": ("binary_sensor", "state_topic", f"{PREFIX}/hall/person"),
    "yolo_app_test_hall_person_count": ("sensor", "state_topic", f"{PREFIX}/hall/person"),
    "yolo_app_test_hall_table_person_count": ("sensor", "state_topic", f"{PREFIX}/hall/table/person"),
    "yolo_app_test_hall_exit_in": ("sensor", "state_topic", f"{PREFIX}/hall/exit/in"),
    "yolo_app_test_hall_exit_out": ("sensor", "state_topic", f"{PREFIX}/hall/exit/out"),
    "yolo_app_test_hall_status": ("sensor", "state_topic", f"{PREFIX}/hall/status"),
    "yolo_app_test_hall_person_snapshot": ("camera", "topic", f"{PREFIX}/hall/person/snapshot"),
    "yolo_app_test_hall_snapshot": ("camera", "topic", f"{PREFIX}/hall/snapshot"),
    "yolo_app_test_hall_detect": ("switch", "command_topic", f"{PREFIX}/hall/detect/set"),
    "yolo_app_test_hall_take_snapshot": ("button", "command_topic", f"{PREFIX}/hall/snapshot/set"),
}


def test_events_counts_pictures_and_discovery_reach_the_broker(tmp_path, walk, broker):
    """One run: every event row published as it was written, in the order of the database, and an update
    when it ends (its clip written); the retained counts go up and back to 0; a picture per class; online
    while running and offline after; discovery configs retained and valid, and one of ours that no camera has
    any more removed."""
    sub = Subscriber(broker, f"{PREFIX}/#", "homeassistant/#")
    stale = "homeassistant/sensor/yolo_app_test/yolo_app_test_gone_status/config"  # an earlier camera's entity
    sub.publish(stale, json.dumps({"name": "status", "state_topic": f"{PREFIX}/gone/status"}), retain=True)
    monitor = MonitorProcess(monitor_config(tmp_path, walk, broker))
    try:
        wait_for(lambda: len([e for e in published_events(sub) if e["event"]["type"] == "line_cross"]) >= 2, 240,
                 "two loops' events on the events topic")
    finally:
        log = monitor.finish()
    assert monitor.proc.returncode == 0, log
    wait_for(lambda: sub.texts(f"{PREFIX}/available")[-1:] == ["offline"], 30, "offline after the stop")
    written = rows(tmp_path)
    new = [e["event"] for e in published_events(sub) if e["type"] == "new"]
    assert first_of_each([e["id"] for e in new]) == [r.id for r in written]  # every row, in the order written
    assert new[0] == next(r for r in written if r.id == new[0]["id"]).exported() | {
        "snapshot_path": new[0]["snapshot_path"], "clip_path": new[0]["clip_path"]}  # paths come later
    assert set(new[0]) == set(EXPORT_FIELDS)
    ended = [e["event"] for e in published_events(sub) if e["type"] == "end"]
    clipped = [r.id for r in written if r.clip_path]
    assert clipped and first_of_each([e["id"] for e in ended]) == clipped  # each clip written
    assert all(e["clip_path"] for e in ended)
    assert {e["type"] for e in new} >= {"object_seen", "zone_enter", "zone_leave", "line_cross"}

    people = sub.texts(f"{PREFIX}/hall/person")
    assert people[0] == "0" and "1" in people and "0" in people[people.index("1"):]  # up, then back to 0
    at_table = sub.texts(f"{PREFIX}/hall/table/person")
    assert at_table[0] == "0" and "1" in at_table and "0" in at_table[at_table.index("1"):]
    crossed = [line.direction for line in written if line.type == "line_cross"]
    assert sub.texts(f"{PREFIX}/hall/exit/in")[-1] == str(crossed.count("in")) != "0"
    assert sub.texts(f"{PREFIX}/hall/exit/out")[-1] == str(crossed.count("out"))
    assert "running" in sub.texts(f"{PREFIX}/hall/status") and sub.texts(f"{PREFIX}/hall/status")[-1] == "ended"
    assert sub.texts(f"{PREFIX}/hall/detect/state") == ["ON"]
    picture = cv2.imdecode(np.frombuffer(sub.on(f"{PREFIX}/hall/person/snapshot")[-1].payload, np.uint8), 1)
    assert picture.shape == (432, 768, 3)
    assert sub.texts(f"{PREFIX}/available")[0] == "online"
    sub.close()

    # What a Home Assistant starting now finds: the retained state and discovery.
    late = Subscriber(broker, f"{PREFIX}/#", "homeassistant/#")
    wait_for(lambda: late.on(f"{PREFIX}/available"), 20, "the retained messages")
    time.sleep(1)  # the rest of them
    retained = {m.topic: m.payload for m in late.messages if m.retain}
    late.close()
    assert retained[f"{PREFIX}/available"] == b"offline" and stale not in retained
    announced = {t: json.loads(p) for t, p in retained.items() if t.startswith("homeassistant/")}
    assert sorted(c["unique_id"] for c in announced.values()) == sorted(ENTITIES)
    for topic, config in announced.items():
        component, topic_key, expected = ENTITIES[config["unique_id"]]
        assert topic == f"homeassistant/{component}/{PREFIX}/{config['unique_id']}/config"
        assert config[topic_key] == expected and config["name"]
        assert config["device"]["identifiers"] == ["yolo_app_test_hall"] and config["device"]["name"] == "hall"
        assert config["availability_topic"] == f"{PREFIX}/available"
        if topic_key != "command_topic":
            assert expected in retained, f"nothing retained on {expected}"
    switch = announced[f"homeassistant/switch/{PREFIX}/yolo_app_test_hall_detect/config"]
    assert switch["state_topic"] == f"{PREFIX}/hall/detect/state" and (switch["payload_on"], switch["payload_off"]) == (
        "ON", "OFF")


def test_commands_status_and_the_last_will(tmp_path, walk, broker):
    """detect/set OFF: the camera runs on (its frames), nothing is detected, no event is written; ON again:
    events come back (while off the walk loops twice, so there was someone to see). snapshot/set: a picture
    of the next frame. The status JSON says what MQTT does. Killed with -9, the monitor shows offline by
    the broker's last will."""
    sub = Subscriber(broker, f"{PREFIX}/#")
    monitor = MonitorProcess(monitor_config(tmp_path, walk, broker), "--web-port", "0")
    try:
        wait_for(lambda: published_events(sub), 240, "the first event")
        mqtt = wait_for(lambda: monitor.status()["mqtt"]["published"] and monitor.status()["mqtt"], 30, "published")
        assert (mqtt["connected"], mqtt["broker"], mqtt["last_error"]) == (True, f"127.0.0.1:{broker.port}", None)
        sub.publish(f"{PREFIX}/hall/detect/set", "OFF")
        wait_for(lambda: sub.texts(f"{PREFIX}/hall/detect/state")[-1:] == ["OFF"], 30, "detect/state OFF")
        frames = monitor.status()["cameras"]["hall"]["frames"]
        wait_for(lambda: monitor.status()["cameras"]["hall"]["frames"] >= frames + 3, 60, "frames while off")
        before = len(rows(tmp_path))  # an event already on its way when OFF came is written by now
        wait_for(lambda: monitor.status()["cameras"]["hall"]["frames"] >= frames + 2 * 180, 240,
                 "two loops of the walk while off")
        assert len(rows(tmp_path)) == before
        assert sub.texts(f"{PREFIX}/hall/person")[-1] == "0"
        pictures = len(sub.on(f"{PREFIX}/hall/snapshot"))
        sub.publish(f"{PREFIX}/hall/snapshot/set", "ON")  # while off too: a picture is no detection
        picture = wait_for(lambda: sub.on(f"{PREFIX}/hall/snapshot")[pictures:], 60, "the snapshot")[-1].payload
        assert cv2.imdecode(np.frombuffer(picture, np.uint8), 1).shape == (432, 768, 3)
        sub.publish(f"{PREFIX}/hall/detect/set", "ON")
        wait_for(lambda: len(rows(tmp_path)) > before, 240, "events after ON")
        assert sub.texts(f"{PREFIX}/hall/detect/state")[-1] == "ON"
        assert sub.texts(f"{PREFIX}/available")[-1] == "online"
        monitor.proc.kill()
        monitor.proc.wait(30)
        wait_for(lambda: sub.texts(f"{PREFIX}/available")[-1:] == ["offline"], 60, "the last will")
    finally:
        monitor.finish()
        sub.close()


@pytest.mark.slow
def test_events_of_a_minute_without_the_broker_arrive_in_order_also_from_a_monitor_restarted_meanwhile(
        tmp_path, walk, broker):
    """The broker goes away for a minute while events happen; meanwhile the monitor is restarted. When the
    broker is back, every event row of that time arrives (at least once), none missing, in order."""
    config = monitor_config(tmp_path, walk, broker)
    sub = Subscriber(broker, f"{PREFIX}/events")
    monitors = [MonitorProcess(config)]
    try:
        wait_for(lambda: published_events(sub), 240, "the first event")
        broker.stop()
        outage = time.monotonic()
        published = len(rows(tmp_path))
        wait_for(lambda: len(rows(tmp_path)) >= published + 3, 120, "events while the broker is away")
        monitors[0].finish()
        monitors.append(MonitorProcess(config))  # its predecessor's unpublished events are in the store
        wait_for(lambda: len(rows(tmp_path)) >= published + 6, 120, "the restarted monitor's events")
        time.sleep(max(0.0, 60 - (time.monotonic() - outage)))
        broker.start()
        wait_for(lambda: {r.id for r in rows(tmp_path)[:-2]} <= {e["event"]["id"] for e in published_events(sub)},
                 120, "every event after the broker came back")
    finally:
        log = "".join(m.finish() for m in monitors)
        sub.close()
    written = [r.id for r in rows(tmp_path)]
    ids = first_of_each([e["event"]["id"] for e in published_events(sub) if e["type"] == "new"])
    assert ids == written and len(written) >= published + 6  # none missing, in order
    assert "trying again (events are kept and published once it connects)" in log


def test_a_wrong_password_is_one_log_line_and_the_events_are_still_written(tmp_path, walk):
    broker = Broker(tmp_path / "broker", users={"ha": "right"})
    broker.start()
    try:
        config = monitor_config(tmp_path, walk, broker, user="ha", password_env="YOLO_TEST_MQTT_PASSWORD")
        monitor = MonitorProcess(config, env={"YOLO_TEST_MQTT_PASSWORD": "Wr0ng-Pa55"})
        wait_for(lambda: len(rows(tmp_path)) >= 3 and monitor.log.count("refused the connection") >= 1, 240,
                 "events, and the refusal")
        time.sleep(5)  # a few more tries (1, 2, 4 s apart)
        log = monitor.finish()
    finally:
        broker.stop()
    assert monitor.proc.returncode == 0, log
    refused = [line for line in log.splitlines() if "refused the connection" in line]
    assert len(refused) == 1, log  # said once, though it keeps trying
    assert f"the broker at 127.0.0.1:{broker.port} refused the connection (Not authorized, user 'ha')" in refused[0]
    assert "Wr0ng-Pa55" not in log  # never the password


def test_over_tls_with_a_password_the_events_arrive(tmp_path, walk):
    broker = Broker(tmp_path / "broker", users={"ha": "s3cret"}, tls=True)
    broker.start()
    sub = Subscriber(broker, f"{PREFIX}/events", user="ha", password="s3cret")
    try:
        config = monitor_config(tmp_path, walk, broker, port=broker.tls_port, user="ha",
                                password_env="YOLO_TEST_MQTT_PASSWORD", tls={"ca": str(broker.ca)})
        monitor = MonitorProcess(config, env={"YOLO_TEST_MQTT_PASSWORD": "s3cret"})
        try:
            wait_for(lambda: published_events(sub), 240, "an event over TLS")
        finally:
            log = monitor.finish()
    finally:
        sub.close()
        broker.stop()
    assert monitor.proc.returncode == 0 and f"mqtt: connected to 127.0.0.1:{broker.tls_port}" in log, log
