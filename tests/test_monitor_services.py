"""Monitor services: webhook delivery with retries, evidence retention, and the status endpoint.

All against real sockets on 127.0.0.1 and a real EventStore. The webhook schedule runs on a fake clock
where its timing is the point (back-offs, give-ups, who goes first), so those verdicts are exact on any
machine; a bound that needs the real clock is named "promptly" and has a margin of many times.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from web_helpers import local_site
from yolo_app.errors import UserError
from yolo_app.monitor.alerts import WebhookSender
from yolo_app.monitor.service_config import Web
from yolo_app.monitor.events import Event, EventStore
from yolo_app.monitor.metrics import render_metrics
from yolo_app.monitor.retention import GIB, RetentionWorker, apply_retention
from yolo_app.monitor.web.server import WebServer

DAY = 86400.0


def wait_for(predicate, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class FakeClock:
    """The webhook schedule's time, moving only when the sender waits for a due delivery: such a wait
    returns at once, that much later, after running what ``at`` put at or before then (an endpoint coming
    back). Attempts take no time on it, so every try's time is an exact sum of back-offs."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._due: list[tuple[float, object]] = []

    def __call__(self) -> float:
        return self.now

    def at(self, when: float, action) -> None:
        self._due.append((when, action))

    def wait(self, _condition, seconds: float) -> bool:
        self.now += seconds
        for item in [d for d in self._due if d[0] <= self.now]:
            self._due.remove(item)
            item[1]()
        return False


# -- a scripted webhook receiver ---------------------------------------------------------------------
class HookServer:
    """Answers POSTs with the next status of ``script`` (200 once it runs out) and records them all, with
    the time of each on ``clock``."""

    def __init__(self, script: list[int] | None = None, port: int = 0, clock=time.monotonic) -> None:
        self.script = list(script or [])
        self.requests: list[tuple[int, str, bytes]] = []  # (status answered, content type, body)
        self.times: list[float] = []  # clock() of each request
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    status = outer.script.pop(0) if outer.script else 200
                    outer.requests.append((status, self.headers["Content-Type"], body))
                    outer.times.append(clock())
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def delivered(self) -> list[dict]:
        with self.lock:
            return [json.loads(body) for status, _ctype, body in self.requests if status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_server():
    servers: list[HookServer] = []

    def make(script: list[int] | None = None, clock=time.monotonic) -> HookServer:
        servers.append(HookServer(script, clock=clock))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def sender_factory():
    senders: list[WebhookSender] = []

    def make(**kwargs) -> WebhookSender:
        kwargs.setdefault("backoff_s", (0.05, 0.2))
        kwargs.setdefault("timeout_s", 2.0)
        senders.append(WebhookSender(**kwargs))
        return senders[-1]

    yield make
    for sender in senders:
        sender.close(timeout=1.0)


def test_webhook_arrives_once_after_two_server_errors(hook_server, sender_factory):
    server = hook_server([500, 500])
    sender = sender_factory()
    sender.start()
    payload = {"camera": "door", "type": "zone_enter", "label": "person", "confidence": 0.87, "id": 1}
    sender.send(server.url, payload)
    assert wait_for(lambda: sender.sent == 1)
    sender.close()
    assert [status for status, _, _ in server.requests] == [500, 500, 200]
    assert server.delivered() == [payload]
    assert {ctype for _, ctype, _ in server.requests} == {"application/json"}
    assert sender.stats() == {"sent": 1, "failed": 0, "retried": 2, "dropped": 0}


def test_webhook_to_closed_port_gives_up_by_age_logs_once_and_closes_promptly(sender_factory, caplog):
    clock = FakeClock()
    sender = sender_factory(give_up_after_s=0.5, backoff_s=(0.1, 0.4), clock=clock, wait=clock.wait)
    sender.send(closed_port_url(), {"n": 1})
    with caplog.at_level(logging.WARNING, logger="yolo_app.monitor.alerts"):
        sender.start()
        assert wait_for(lambda: sender.failed == 1)
    assert sender.stats() == {"sent": 0, "failed": 1, "retried": 2, "dropped": 0}  # tries at 0, 0.1, 0.3 s
    assert clock() - 1000.0 == pytest.approx(0.3)  # 0.7 would have been too late: given up at once
    gave_up = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert len(gave_up) == 1 and "3 attempts" in gave_up[0].getMessage()
    started = time.monotonic()
    sender.close(timeout=60.0)  # nothing pending: it returns at once, not at its time-out
    assert time.monotonic() - started < 10.0


def test_webhook_endpoint_down_for_a_while_gets_every_event_once_it_is_back(sender_factory):
    url = closed_port_url()
    port = int(url.split(":")[2].split("/")[0])
    clock = FakeClock()
    servers: list[HookServer] = []
    sender = sender_factory(backoff_s=(0.05, 0.2), give_up_after_s=30.0, clock=clock, wait=clock.wait)
    for n in range(3):
        sender.send(url, {"n": n})
    back_at = clock() + 10.0  # down for many more tries than five at this back-off
    clock.at(back_at, lambda: servers.append(HookServer(port=port, clock=clock)))  # back, on the same port
    sender.start()
    try:
        assert wait_for(lambda: sender.sent == 3)
        [server] = servers
        assert sorted(d["n"] for d in server.delivered()) == [0, 1, 2]
        assert len(server.requests) == 3  # each once
        assert all(back_at <= t <= back_at + 0.2 + 1e-6 for t in server.times)  # within the longest back-off
        assert sender.retried >= 3 * 40 and sender.failed == 0 and sender.dropped == 0
    finally:
        for server in servers:
            server.close()


def test_webhook_non_2xx_is_a_failure_including_redirects(hook_server, sender_factory):
    server = hook_server([302, 404])
    clock = FakeClock()
    sender = sender_factory(give_up_after_s=0.2, backoff_s=(0.1, 0.4), clock=clock, wait=clock.wait)
    sender.send(server.url, {"n": 1})
    sender.start()
    assert wait_for(lambda: sender.failed == 1)
    assert [status for status, _, _ in server.requests] == [302, 404]  # tries at 0 and 0.1 s; 0.3 is too late
    assert sender.sent == 0 and sender.retried == 1


def test_webhook_dead_endpoint_in_back_off_does_not_hold_up_another(hook_server, sender_factory):
    clock = FakeClock()
    server = hook_server(clock=clock)
    sender = sender_factory(backoff_s=(1.0, 1.0), give_up_after_s=3.0, clock=clock, wait=clock.wait)
    sender.send(closed_port_url(), {"to": "dead"})  # first in the schedule
    sender.send(server.url, {"to": "alive"})
    sender.start()
    assert wait_for(lambda: sender.sent == 1 and sender.failed == 1)
    assert server.delivered() == [{"to": "alive"}]
    assert server.times == [1000.0]  # at once: before the dead one's first retry, due a second later
    assert sender.retried == 3  # the dead one: tries at 0, 1, 2 and 3 s


def test_webhook_send_never_blocks_and_drops_oldest_when_full(hook_server, sender_factory):
    server = hook_server()
    sender = sender_factory(queue_size=3)
    sending = threading.Thread(target=lambda: [sender.send(server.url, {"n": n}) for n in range(50)])
    sending.start()  # not started: nothing drains the queue, so a send that waited for room would wait for ever
    sending.join(30)
    assert not sending.is_alive()
    assert sender.dropped == 47
    sender.start()
    assert wait_for(lambda: sender.sent == 3)
    assert server.delivered() == [{"n": 47}, {"n": 48}, {"n": 49}]


def test_webhook_close_returns_promptly_when_the_endpoint_never_answers(sender_factory):
    blackhole = socket.socket()  # accepts connections, never replies
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(16)
    blackhole.settimeout(30)
    try:
        url = f"http://127.0.0.1:{blackhole.getsockname()[1]}/hook"
        sender = sender_factory(timeout_s=600.0)  # the one on the wire would hold close() ten minutes
        sender.start()
        for n in range(3):
            sender.send(url, {"n": n})
        on_the_wire, _ = blackhole.accept()  # the first is on the wire
        started = time.monotonic()
        sender.close(timeout=0.5)
        assert time.monotonic() - started < 10.0
        assert sender.dropped == 2  # the two still waiting; the one on the wire cannot be recalled
        sender.send(url, {"n": 99})
        assert sender.dropped == 3  # sent after close
        on_the_wire.close()
    finally:
        blackhole.close()


def test_webhook_rejects_a_non_http_url(sender_factory):
    with pytest.raises(ValueError, match="http"):
        sender_factory().send("file:///etc/passwd", {})


# -- retention ---------------------------------------------------------------------------------------
NOW = 1_800_000_000.0


def put(storage: Path, rel: str, *, age_days: float, size: int = 100) -> Path:
    path = storage / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


@pytest.fixture
def store(tmp_path):
    store = EventStore(tmp_path / "events.db")
    yield store
    store.close()


def add_event(store: EventStore, snapshot: str | None, clip: str | None) -> int:
    return store.add(Event(camera="door", type="zone_enter", snapshot_path=snapshot, clip_path=clip))


def by_id(store: EventStore) -> dict[int, Event]:
    return {e.id: e for e in store.query()}


def test_retention_deletes_old_evidence_marks_rows_and_keeps_fresh(tmp_path, store):
    old_snap, old_clip = "snapshots/door/2026-11-10/12-zone_enter.jpg", "clips/door/2026-11-10/12-zone_enter.mp4"
    new_snap, new_clip = "snapshots/door/2026-11-25/13-zone_enter.jpg", "clips/door/2026-11-25/13-zone_enter.mp4"
    put(tmp_path, old_snap, age_days=10, size=300)
    put(tmp_path, old_clip, age_days=10, size=700)
    put(tmp_path, new_snap, age_days=1)
    put(tmp_path, new_clip, age_days=1)
    old_id, new_id = add_event(store, old_snap, old_clip), add_event(store, new_snap, new_clip)

    report = apply_retention(tmp_path, store, days=7, max_gb=20, now=NOW)

    assert (report.files_deleted, report.bytes_freed, report.rows_marked) == (2, 1000, 1)
    assert not (tmp_path / old_snap).exists() and not (tmp_path / old_clip).exists()
    assert (tmp_path / new_snap).exists() and (tmp_path / new_clip).exists()
    rows = by_id(store)
    assert set(rows) == {old_id, new_id}  # the rows stay
    assert rows[old_id].evidence_deleted_at is not None and rows[new_id].evidence_deleted_at is None
    assert not (tmp_path / "snapshots/door/2026-11-10").exists()  # emptied date folders go
    assert (tmp_path / "snapshots").is_dir() and (tmp_path / "clips").is_dir()
    assert apply_retention(tmp_path, store, days=7, max_gb=20, now=NOW).files_deleted == 0


def test_retention_size_cap_deletes_oldest_first_until_under(tmp_path, store):
    rels = [f"clips/door/2026-11-2{age}/{age}.mp4" for age in range(5, 0, -1)]  # oldest first
    for age, rel in zip(range(5, 0, -1), rels):
        put(tmp_path, rel, age_days=age, size=1000)
    ids = [add_event(store, None, rel) for rel in rels]

    report = apply_retention(tmp_path, store, days=30, max_gb=2500 / GIB, now=NOW)

    assert (report.files_deleted, report.bytes_freed, report.rows_marked) == (3, 3000, 3)
    assert [(tmp_path / rel).exists() for rel in rels] == [False, False, False, True, True]
    rows = by_id(store)
    assert [rows[i].evidence_deleted_at is not None for i in ids] == [True, True, True, False, False]


def test_retention_never_touches_other_files_partials_or_links(tmp_path, store):
    outside = put(tmp_path, "exports/old.jpg", age_days=100)
    partials = [put(tmp_path, "snapshots/door/d/a.jpg.partial", age_days=100),
                put(tmp_path, "clips/door/d/b.partial.mp4", age_days=100)]
    other_kind = put(tmp_path, "snapshots/door/d/notes.txt", age_days=100)
    target = put(tmp_path, "elsewhere/target.mp4", age_days=100)
    link = tmp_path / "clips/door/d/link.mp4"
    link.symlink_to(target)
    put(tmp_path, "snapshots/door/d/real.jpg", age_days=100)
    db_mtime = store.path.stat().st_mtime

    report = apply_retention(tmp_path, store, days=1, max_gb=0, now=NOW)

    assert report.files_deleted == 1
    for path in (outside, *partials, other_kind, target, link):
        assert path.exists() or path.is_symlink(), path
    assert store.path.exists() and store.path.stat().st_mtime == db_mtime


def test_retention_worker_runs_at_start_and_stops_promptly_in_its_hour_long_wait(tmp_path, store, caplog):
    old = put(tmp_path, "snapshots/door/2000-01-01/1.jpg", age_days=0)
    os.utime(old, (time.time() - 30 * DAY,) * 2)
    worker = RetentionWorker(tmp_path, store, days=7, max_gb=20, interval_s=3600)
    with caplog.at_level(logging.INFO, logger="yolo_app.monitor.retention"):
        worker.start()
        assert wait_for(lambda: worker.last_report is not None)
    started = time.monotonic()
    worker.stop(timeout=30)  # it waits an hour between passes: only the stop can end that wait
    assert time.monotonic() - started < 10.0
    assert not worker._thread.is_alive()
    assert not old.exists() and worker.last_report.files_deleted == 1
    assert sum("retention: deleted 1 files" in r.getMessage() for r in caplog.records) == 1


# -- status --------------------------------------------------------------------------------------------
WEIRD = 'yard "back"\\gate\nnorth'
SNAPSHOT = {
    "started_at": "2026-11-26T17:13:01.123Z",
    "uptime_s": 12.5,
    "cameras": {
        "door": {"state": "running", "fps": 9.8, "last_frame_age_s": 0.1, "events_today": 4,
                 "motion_skipped_fraction": 0.25, "reconnects": 2, "dropped": 7},
        WEIRD: {"state": "reconnecting", "fps": 0.0, "last_frame_age_s": None, "events_today": 0,
                "motion_skipped_fraction": 0.0, "reconnects": 5, "dropped": 0},
    },
    "webhooks": {"sent": 3, "failed": 1, "retried": 4, "dropped": 0},
    "mqtt": {"connected": False, "broker": "10.0.0.2:1883", "last_error": "unknown host '10.0.0.2'",
             "published": 17, "pending": 5},
    "events_total": 42,
}


@pytest.fixture
def status_server(tmp_path):
    """The web page's server in this process, serving a snapshot function (no password, on the loopback)."""
    sites = []

    def make(snapshot=lambda: SNAPSHOT):
        site = local_site(tmp_path / f"site{len(sites)}", snapshot=snapshot)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.stop()


def get(server, path: str, accept: str = "*/*") -> tuple[int, str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """A strict little reader of the 0.0.4 text format: every sample's family is declared (HELP and
    TYPE) before it, a family's samples are contiguous, label values unescape exactly."""
    helps, types, samples, finished = set(), {}, {}, set()
    current = None
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge") and name not in types
            types[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, label_text, value = match.groups()
        assert name in helps and name in types, name
        if name != current:
            assert name not in finished, f"{name} samples are not contiguous"
            finished.add(current)
            current = name
        labels = {}
        if label_text:
            pairs = LABEL.findall(label_text)
            assert ",".join(f'{k}="{v}"' for k, v in pairs) == label_text
            labels = {k: re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v) for k, v in pairs}
        key = (name, frozenset(labels.items()))
        assert key not in samples
        samples[key] = float(value)
    return samples


def test_status_json_round_trips_on_status_and_root(status_server):
    server = status_server()
    assert server.port > 0
    for path in ("/status", "/", "/status?pretty=1"):  # `curl /` (no text/html): the JSON, as before the page
        code, ctype, body = get(server, path)
        assert code == 200 and ctype == "application/json"
        assert json.loads(body) == SNAPSHOT


def test_metrics_parse_with_help_type_and_escaped_labels(status_server):
    code, ctype, body = get(status_server(), "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
    m = parse_metrics(body)

    def door(name: str) -> float:
        return m[(name, frozenset({("camera", "door")}))]

    assert door("yolo_app_camera_up") == 1 and door("yolo_app_camera_fps") == 9.8
    assert door("yolo_app_camera_last_frame_age_seconds") == 0.1
    assert door("yolo_app_camera_events_today") == 4 and door("yolo_app_camera_motion_skipped_ratio") == 0.25
    assert door("yolo_app_camera_reconnects_total") == 2 and door("yolo_app_camera_dropped_frames_total") == 7
    assert m[("yolo_app_camera_up", frozenset({("camera", WEIRD)}))] == 0
    assert m[("yolo_app_camera_state", frozenset({("camera", WEIRD), ("state", "reconnecting")}))] == 1
    assert m[("yolo_app_camera_reconnects_total", frozenset({("camera", WEIRD)}))] == 5
    assert ("yolo_app_camera_last_frame_age_seconds", frozenset({("camera", WEIRD)})) not in m  # None: no sample
    assert m[("yolo_app_webhooks_sent_total", frozenset())] == 3
    assert m[("yolo_app_webhooks_failed_total", frozenset())] == 1
    assert m[("yolo_app_webhooks_retried_total", frozenset())] == 4
    assert m[("yolo_app_events_total", frozenset())] == 42 and m[("yolo_app_uptime_seconds", frozenset())] == 12.5
    broker = frozenset({("broker", "10.0.0.2:1883")})
    assert (m[("yolo_app_mqtt_connected", broker)], m[("yolo_app_mqtt_published_total", broker)],
            m[("yolo_app_mqtt_pending", broker)]) == (0, 17, 5)


# --- the event store's change log: what the ways out publish from ------------------------------------------
def test_the_change_log_has_each_row_new_and_ended_in_order_and_cursors_trim_it(store):
    signals = []
    store.on_change(lambda: signals.append(1))
    first = store.add(Event("door", "zone_enter", label="person", zone="hall"))
    offline = store.add(Event("door", "camera_offline"))
    store.update(first, snapshot_path="snapshots/door/1.jpg")  # evidence on the way: not an end
    store.update(first, clip_path="clips/door/1.mp4")  # the clip written: the event's end
    store.update(offline, ended_at="2026-11-26T18:00:00.000Z")  # the camera back: the outage's end
    changes = store.changes_after(0)
    assert [(c.seq, c.kind, c.event.id) for c in changes] == [(1, "new", first), (2, "new", offline),
                                                               (3, "end", first), (4, "end", offline)]
    assert changes[0].event.clip_path == "clips/door/1.mp4"  # the row as it is now
    assert len(signals) == 4 and store.last_change() == 4 and store.cursor("mqtt") is None
    store.set_cursor("mqtt", 2)
    assert store.cursor("mqtt") == 2 and [c.seq for c in store.changes_after(0)] == [3, 4]  # delivered: dropped
    store.set_cursor("web", 2)  # a second way out: the log keeps what the slower one has not had
    store.add(Event("door", "object_seen"))
    store.set_cursor("mqtt", 5)
    assert [c.seq for c in store.changes_after(2)] == [3, 4, 5]
    store.set_cursor("web", 5)
    assert store.changes_after(0) == [] and store.last_change() == 5


RELEASED_SCHEMA = """
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, camera TEXT NOT NULL, type TEXT NOT NULL, label TEXT,
    track_id INTEGER, zone TEXT, direction TEXT, confidence REAL, classification TEXT, started_at TEXT NOT NULL,
    ended_at TEXT, snapshot_path TEXT, clip_path TEXT, evidence_deleted_at TEXT);
CREATE INDEX events_started ON events (started_at);
CREATE INDEX events_camera ON events (camera, started_at);
"""  # events.db as the release before the change log wrote it


def test_an_events_db_from_before_the_change_log_opens_with_every_row_and_logs_from_then_on(tmp_path):
    db = sqlite3.connect(tmp_path / "events.db")
    db.executescript(RELEASED_SCHEMA)
    db.execute("INSERT INTO events (camera, type, started_at) VALUES ('door', 'object_seen', "
               "'2026-11-01T00:00:00.000Z')")
    db.commit()
    db.close()
    store = EventStore(tmp_path / "events.db")
    try:
        [old] = store.query()
        assert (old.id, old.camera, old.type) == (1, "door", "object_seen") and store.last_change() == 0
        new = store.add(Event("door", "zone_enter"))
        assert [(c.kind, c.event.id) for c in store.changes_after(0)] == [("new", new)] and new == 2
    finally:
        store.close()


def test_metrics_of_a_snapshot_without_cameras_is_still_valid():
    samples = parse_metrics(render_metrics({"uptime_s": 1.0, "cameras": {}, "webhooks": {}, "events_total": 0}))
    assert samples == {("yolo_app_uptime_seconds", frozenset()): 1.0, ("yolo_app_events_total", frozenset()): 0.0}


def test_status_unknown_path_is_404(status_server):
    code, _, _ = get(status_server(), "/nope")
    assert code == 404


def test_status_snapshot_that_raises_gives_500_and_server_keeps_serving(status_server):
    calls = []

    def flaky() -> dict:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("camera table changed size\nsecond line")
        return SNAPSHOT

    server = status_server(flaky)
    code, _, body = get(server, "/status")
    assert code == 500 and body == "status snapshot failed: RuntimeError: camera table changed size\n"
    assert get(server, "/status")[0] == 200


def test_web_port_in_use_is_a_user_error(status_server):
    site = status_server()
    with pytest.raises(UserError, match=f"^web port {site.port} is in use$"):
        WebServer(dataclasses.replace(site.server.site, settings=Web(port=site.port))).start()


def test_web_server_stop_returns_and_frees_the_port(status_server):
    site = status_server()
    port, serving = site.port, site.server._thread
    site.server.stop(timeout=30)
    assert not serving.is_alive()  # joined: it looks for the stop every 0.1 s
    again = WebServer(dataclasses.replace(site.server.site, settings=Web(port=port)))
    again.start()
    again.stop()


def test_without_a_way_out_the_change_log_keeps_nothing_and_a_dropped_way_outs_cursor_is_forgotten(store):
    for _ in range(3):
        store.add(Event("door", "zone_enter"))
    store.trim_changes()  # no way out has a cursor: nobody will read the log (retention trims it every pass)
    assert store.changes_after(0) == [] and store.last_change() == 3  # numbering goes on
    store.set_cursor("mqtt", 3)
    store.set_cursor("old", 3)  # a way out the config no longer has
    store.add(Event("door", "zone_leave"))
    store.keep_cursors({"mqtt"})  # as the monitor starts with MQTT configured
    assert store.cursor("old") is None and [c.seq for c in store.changes_after(3)] == [4]  # what MQTT still needs
    store.keep_cursors(set())  # MQTT taken out of the config
    assert store.cursor("mqtt") is None and store.changes_after(0) == []
