"""The monitor's web page in a real browser (Debian's Chromium through Selenium) against a real `yolo-app monitor`
process on a shared video, and its server's security through raw HTTP: the cameras live, the events the
database holds with filters, paging, clips and review marks (across a reload and a restart), the counts, a
password with sessions, CSRF and a login limit, evidence files only where the database names them, TLS."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import ssl
import subprocess
import sys
import time
from base64 import b64encode
from html.parser import HTMLParser
from pathlib import Path
from unittest.mock import ANY

import cv2
import numpy as np
import pytest

from conftest import PERSON_VIDEO, REPO, make_clip, wait_for
from monitor_process import MonitorProcess
from test_monitor import EXIT, TABLE
from web_helpers import StillCamera, chromium, local_site, request, until
from yolo_app.monitor.service_config import Web, WebTls
from yolo_app.monitor.events import Event
from yolo_app.monitor.web.auth import FAILURES_ALLOWED, PasswordHash
from yolo_app.monitor.web.live import LivePictures

ZONE = "<script>alert(1)</script>"  # a zone name that would run if the page did not escape it
# events.db as the release before the web page wrote it (`yolo-app monitor` 0.1.0 on the person video: 24 events,
# with the change log of MQTT): opened by today's monitor, it gains the review column in place.
RELEASED_DB = REPO / "tests" / "data" / "events-before-review.db"
OLD_COLUMNS = ("id", "camera", "type", "label", "track_id", "zone", "direction", "confidence", "classification",
               "started_at", "ended_at", "snapshot_path", "clip_path", "evidence_deleted_at")


def db_rows(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    # The released file is read as immutable: a WAL database opened even read-only gets -shm/-wal files beside it.
    db = sqlite3.connect(f"file:{path}?{'immutable=1' if path == RELEASED_DB else 'mode=ro'}", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


class Watched:
    """A real monitor on a looping walk (a person to the table zone and out across the exit line), its storage
    seeded with a copy of the released database, its web page on a free port."""

    def __init__(self, folder: Path, walk: Path) -> None:
        self.folder, self.db = folder, folder / "data" / "events.db"
        self.db.parent.mkdir(parents=True)
        shutil.copy(RELEASED_DB, self.db)
        self.config = folder / "monitor.yaml"
        self.config.write_text(json.dumps({
            "model": "yolov8n.pt", "backend": "torch", "imgsz": 320, "storage": str(folder / "data"),
            "web": {"port": 0, "live_fps": 5},
            "cameras": [{"name": "hall", "source": str(walk), "classes": ["person"], "loop": True,
                         "zones": [{"name": ZONE, "polygon": TABLE}], "lines": [{"name": "exit", "points": EXIT}],
                         "alerts": [{"on": "zone_enter", "clip": {"pre": 1, "post": 1}},
                                    {"on": "line_cross", "snapshot": True}]}]}))
        self.start()

    def start(self) -> None:
        self.process = MonitorProcess(self.config)
        self.url = self.process.url()

    def restart(self) -> None:
        self.process.finish()
        self.start()

    def new_events(self, sql: str = "1") -> list[tuple]:
        return db_rows(self.db, f"SELECT id, type FROM events WHERE id > 24 AND {sql} ORDER BY id")


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    walk = make_clip(PERSON_VIDEO, folder / "walk.mp4", 180, start=40)
    monitor = Watched(folder, walk)
    try:
        # A zone entry with its clip written, and a line crossing with its snapshot: the page has both kinds.
        wait_for(lambda: monitor.new_events("type = 'zone_enter' AND clip_path IS NOT NULL")
                 and monitor.new_events("type = 'line_cross' AND snapshot_path IS NOT NULL"), 240,
                 f"a clip and a snapshot ({monitor.process.log[-1500:]})")
        yield monitor
    finally:
        monitor.process.finish()


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def rows_shown(driver) -> list[dict]:
    return driver.execute_script("""return [...document.querySelectorAll('li.event')].map(li => ({
        id: Number(li.dataset.id), type: li.querySelector('.type').textContent,
        zone: (li.querySelector('.zone') || {}).textContent || null,
        label: li.querySelector('.label').textContent || null, reviewed: li.classList.contains('reviewed')}))""")


def no_alert(driver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


# --- a real monitor in a real browser --------------------------------------------------------------------------
@pytest.mark.servers
def test_the_released_events_db_is_migrated_in_place_with_every_row(watched):
    before = db_rows(RELEASED_DB, f"SELECT {', '.join(OLD_COLUMNS)} FROM events ORDER BY id")
    after = db_rows(watched.db, f"SELECT {', '.join(OLD_COLUMNS)}, reviewed_at FROM events WHERE id <= 24 ORDER BY id")
    assert len(before) == 24 and [row[:-1] for row in after] == before and all(row[-1] is None for row in after)
    assert watched.new_events()  # and the monitor writes on after them


@pytest.mark.servers
def test_the_cameras_page_shows_the_camera_live_and_the_picture_changes(watched, browser):
    browser.get(watched.url)
    camera = browser.find_element("css selector", 'section.camera[data-camera="hall"]')
    picture = camera.find_element("css selector", "img.live")

    def loaded(_=None):
        return browser.execute_script("const i = arguments[0]; return i.complete && i.naturalWidth > 0 && i.src",
                                      picture)
    first = until(browser, loaded, 30, "the live picture")
    shot = cv2.imdecode(np.frombuffer(picture.screenshot_as_png, np.uint8), cv2.IMREAD_GRAYSCALE)
    until(browser, lambda _: loaded() not in (None, False, first), 10, "the next live picture")
    time.sleep(1.0)  # a second of the walk later
    again = cv2.imdecode(np.frombuffer(picture.screenshot_as_png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert shot.std() > 10 and np.abs(shot.astype(int) - again).mean() > 0.5  # a real picture, and it moved
    assert camera.find_element("css selector", '[data-field="state"]').text == "running"
    assert ZONE in camera.find_element("css selector", '[data-field="counts"]').text  # text, not markup
    assert no_alert(browser)


@pytest.mark.servers
def test_the_events_page_lists_the_database_rows_and_filters_narrow_them(watched, browser):
    from selenium.webdriver.support.ui import Select

    browser.get(watched.url + "events")
    shown = rows_shown(browser)
    top = shown[0]["id"]
    stored = db_rows(watched.db, "SELECT id, type, zone, label FROM events WHERE id <= ? ORDER BY id DESC LIMIT 50",
                     (top,))
    assert [(r["id"], r["type"], r["zone"], r["label"]) for r in shown] == stored
    form = browser.find_element("id", "filters")
    Select(form.find_element("name", "type")).select_by_value("zone_enter")
    Select(form.find_element("name", "zone")).select_by_value(ZONE)
    form.find_element("css selector", "button[type=submit]").click()
    until(browser, lambda d: "type=zone_enter" in d.current_url, 10, "the filtered page")
    shown = rows_shown(browser)
    expected = db_rows(watched.db, "SELECT id FROM events WHERE type = 'zone_enter' AND zone = ? AND id <= ? "
                                   "ORDER BY id DESC", (ZONE, shown[0]["id"]))
    assert [r["id"] for r in shown] == [i for (i,) in expected] and {r["zone"] for r in shown} == {ZONE}
    assert len(shown) < len(stored) and no_alert(browser)
    browser.get(watched.url + "events?day=2020-01-01&tz=0")  # a day with nothing
    assert rows_shown(browser) == [] and "No events match" in browser.find_element("id", "events").text
    today = time.strftime("%Y-%m-%d", time.gmtime())
    browser.get(watched.url + f"events?day={today}&tz=0&type=line_cross")
    shown = rows_shown(browser)
    assert shown and [r["id"] for r in shown] == [i for (i,) in db_rows(
        watched.db, "SELECT id FROM events WHERE type = 'line_cross' AND started_at >= ? AND id <= ? ORDER BY id "
                    "DESC", (today, shown[0]["id"]))]


@pytest.mark.servers
def test_a_clip_plays_in_the_page_and_a_snapshot_shows(watched, browser):
    [(event_id,)] = db_rows(watched.db, "SELECT id FROM events WHERE id > 24 AND clip_path IS NOT NULL "
                                        "ORDER BY id LIMIT 1")
    browser.get(watched.url + f"events?type=zone_enter&before={event_id + 1}")
    browser.find_element("css selector", f'li.event[data-id="{event_id}"] button.open').click()
    video = browser.find_element("id", "viewer-video")
    state = "const v = arguments[0]; return [v.error && v.error.code, v.duration, v.currentTime, v.paused]"
    until(browser, lambda d: d.execute_script(state, video)[2] > 0.3, 30, "the clip to play")
    error, duration, _, _ = browser.execute_script(state, video)
    assert error is None and 1.0 < duration < 10.0  # pre 1 s + post 1 s of the walk, and more while it lasted
    browser.find_element("css selector", "dialog .close").click()
    [(snap_id,)] = db_rows(watched.db, "SELECT id FROM events WHERE id > 24 AND type = 'line_cross' AND "
                                       "snapshot_path IS NOT NULL ORDER BY id LIMIT 1")
    browser.get(watched.url + f"events?type=line_cross&before={snap_id + 1}")
    browser.find_element("css selector", f'li.event[data-id="{snap_id}"] button.open').click()
    image = browser.find_element("id", "viewer-image")
    until(browser, lambda d: d.execute_script("return arguments[0].naturalWidth", image) == 768, 10, "the snapshot")


@pytest.mark.servers
def test_a_review_mark_survives_a_reload_and_a_restart(watched, browser):
    browser.get(watched.url + "events")
    row = rows_shown(browser)[1]

    def click_review() -> None:
        browser.find_element("css selector", f'li.event[data-id="{row["id"]}"] button.review').click()

    def reviewed_at():
        return db_rows(watched.db, "SELECT reviewed_at FROM events WHERE id = ?", (row["id"],))[0][0]

    assert not row["reviewed"]
    click_review()
    wait_for(reviewed_at, 10, "the mark in the database")
    click_review()  # and back
    wait_for(lambda: reviewed_at() is None, 10, "the mark taken back")
    click_review()
    wait_for(reviewed_at, 10, "the mark again")
    browser.refresh()
    assert {r["id"]: r["reviewed"] for r in rows_shown(browser)}[row["id"]] is True
    browser.get(watched.url + f"events?reviewed=no&before={row['id'] + 1}")
    assert row["id"] not in [r["id"] for r in rows_shown(browser)]
    unreviewed = db_rows(watched.db, "SELECT COUNT(*) FROM events WHERE reviewed_at IS NULL")[0][0]
    assert int(browser.find_element("id", "unreviewed-count").text) >= unreviewed - 5  # the monitor adds on
    watched.restart()
    browser.get(watched.url + f"events?before={row['id'] + 1}")
    assert rows_shown(browser)[0] == {**row, "reviewed": True}


@pytest.mark.servers
def test_the_counts_page_charts_the_database_per_hour(watched, browser):
    browser.get(watched.url + "counts")
    table = browser.find_element("css selector", "table.totals").text
    assert ZONE in table and "exit" in table and no_alert(browser)
    entered = db_rows(watched.db, "SELECT COUNT(*) FROM events WHERE type = 'zone_enter' AND started_at >= ?",
                      (time.strftime("%Y-%m-%dT", time.gmtime(time.time() - 82800)),))[0][0]
    bars = browser.execute_script("""return [...document.querySelectorAll('figure.chart')].map(f => [
        f.querySelector('figcaption').firstChild.textContent.trim(),
        [...f.querySelectorAll('rect.bar title')].map(t => Number(t.textContent.split(': ').pop()))])""")
    charted = dict(bars)
    assert set(charted) >= {ZONE, "exit in"} and all(len(v) == 24 for v in charted.values())
    assert sum(charted[ZONE]) >= 1 and sum(charted[ZONE]) <= entered + 5  # the monitor adds on meanwhile


@pytest.mark.servers
def test_every_page_fits_a_phone_screen(watched):
    phone = chromium(390, 844, phone=True)
    try:
        for page in ("", "events", "counts"):
            phone.get(watched.url + page)
            wide, view = phone.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert wide <= view, f"/{page}: {wide} px wide on a {view} px screen"
    finally:
        phone.quit()


# --- the server on a database filled here ----------------------------------------------------------------------
class Links(HTMLParser):
    """The event ids and the paging links of an events page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: list[int] = []
        self.links: dict[str, str] = {}
        self.images: list[str] = []
        self.csrf = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "li" and "data-id" in a:
            self.ids.append(int(a["data-id"]))
        if tag == "a" and a.get("id") in ("newer", "older"):
            self.links[a["id"]] = a["href"]
        if tag == "img" and a.get("src", "").startswith("/files/"):
            self.images.append(a["src"])
        if tag == "meta" and a.get("name") == "csrf-token":
            self.csrf = a["content"]


def filled_site(tmp_path, events: int = 130, **settings):
    site = local_site(tmp_path / "data", Web(port=0, **settings),
                      cameras={"hall": StillCamera(np.full((72, 128, 3), 90, np.uint8))})
    for i in range(events):  # three days of events, the newest last
        day = 5 + i * 3 // events
        site.store.add(Event("hall", "zone_enter", started_at=f"2026-12-0{day}T{i % 24:02d}:00:00.000Z",
                             label="person", zone="door"))
    return site


def page_of(port: int, path: str, **headers) -> Links:
    status, _, body = request(port, "GET", path, {"Accept": "text/html", **headers})
    assert status == 200, (path, status, body[:200])
    return Links(body.decode())


def test_paging_walks_every_event_newest_first_both_ways(tmp_path):
    site = filled_site(tmp_path)
    try:
        first = page_of(site.port, "/events")
        second = page_of(site.port, first.links["older"])
        last = page_of(site.port, second.links["older"])
        assert first.ids == list(range(130, 80, -1)) and second.ids == list(range(80, 30, -1))
        assert last.ids == list(range(30, 0, -1)) and "older" not in last.links and "newer" not in first.links
        assert page_of(site.port, last.links["newer"]).ids == second.ids
        site.store.set_reviewed(list(range(1, 121)), True)
        assert page_of(site.port, "/events?reviewed=no").ids == list(range(130, 120, -1))
        started = {i + 1: f"2026-12-0{5 + i * 3 // 130}T{i % 24:02d}" for i in range(130)}  # as filled_site wrote
        day = page_of(site.port, "/events?day=2026-12-06&tz=0")  # the events whose UTC day it is
        assert day.ids == [i for i in range(130, 0, -1) if started[i].startswith("2026-12-06")][:50]
        sydney = page_of(site.port, "/events?day=2026-12-06&tz=-600")  # a viewer at UTC+10: 12-05 14:00 to 12-06 14:00
        assert sydney.ids == [i for i in range(130, 0, -1) if "2026-12-05T14" <= started[i] < "2026-12-06T14"][:50]
        assert sydney.ids != day.ids
        status, _, body = request(site.port, "GET", "/events?day=yesterday", {"Accept": "text/html"})
        assert status == 400 and body == b"day 'yesterday': not a date (YYYY-MM-DD)\n"
    finally:
        site.stop()


def test_a_change_needs_the_pages_csrf_token(tmp_path):
    site = filled_site(tmp_path, events=3)
    try:
        body = json.dumps({"ids": [1], "reviewed": True}).encode()
        json_type = {"Content-Type": "application/json"}
        assert request(site.port, "POST", "/api/review", json_type, body)[0] == 403
        assert request(site.port, "POST", "/api/review", {**json_type, "X-CSRF-Token": "guess"}, body)[0] == 403
        token = page_of(site.port, "/events").csrf
        status, _, answer = request(site.port, "POST", "/api/review", {**json_type, "X-CSRF-Token": token}, body)
        assert status == 200 and json.loads(answer) == {"changed": 1, "unreviewed": 2}
        bad = json.dumps({"ids": "1", "reviewed": True}).encode()
        assert request(site.port, "POST", "/api/review", {**json_type, "X-CSRF-Token": token}, bad)[0] == 400
    finally:
        site.stop()


def test_bound_to_the_loopback_it_answers_only_to_local_host_names(tmp_path):
    site = filled_site(tmp_path, events=1)
    try:
        for host, expected in (("localhost", 200), ("127.0.0.1", 200), ("[::1]", 200), ("rebound.example", 403)):
            assert request(site.port, "GET", "/status", {"Host": f"{host}:{site.port}"})[0] == expected, host
    finally:
        site.stop()


def test_evidence_is_served_only_where_the_database_names_it_inside_the_storage(tmp_path):
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"not for the page")
    site = filled_site(tmp_path, events=0)
    try:
        snap = site.storage / "snapshots" / "hall" / "2026-12-07" / "1-zone_enter.jpg"
        snap.parent.mkdir(parents=True)
        ok, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
        snap.write_bytes(jpeg.tobytes())
        (site.storage / "snapshots" / "hall" / "link.jpg").symlink_to(outside)
        site.store.add(Event("hall", "zone_enter", snapshot_path="snapshots/hall/2026-12-07/1-zone_enter.jpg"))
        site.store.add(Event("hall", "zone_enter", snapshot_path="snapshots/hall/link.jpg"))
        site.store.add(Event("hall", "zone_enter", snapshot_path=str(outside)))  # a row naming an absolute path
        site.store.add(Event("hall", "zone_enter", snapshot_path="../secret.jpg"))
        odd = site.storage / "snapshots" / "back door #2" / "5-zone_enter.jpg"  # a camera name as it may be
        odd.parent.mkdir(parents=True)
        odd.write_bytes(snap.read_bytes())
        site.store.add(Event("back door #2", "zone_enter", snapshot_path="snapshots/back door #2/5-zone_enter.jpg"))
        listed = page_of(site.port, "/events?camera=back+door+%232")
        assert listed.ids == [5] and listed.images == ["/files/snapshots/back%20door%20%232/5-zone_enter.jpg"]
        assert request(site.port, "GET", listed.images[0]) == (200, ANY, odd.read_bytes())
        status, headers, body = request(site.port, "GET", "/files/snapshots/hall/2026-12-07/1-zone_enter.jpg")
        assert status == 200 and headers["content-type"] == "image/jpeg" and body == snap.read_bytes()
        status, headers, body = request(site.port, "GET", "/files/snapshots/hall/2026-12-07/1-zone_enter.jpg",
                                        {"Range": "bytes=0-9"})
        assert status == 206 and body == snap.read_bytes()[:10]  # ranges: a clip can be sought
        for path in ("/files/../secret.jpg", "/files/%2e%2e/secret.jpg", "/files/..%2fsecret.jpg",
                     f"/files/{outside}", f"/files/%2F{str(outside)[1:]}", "/files//etc/passwd",
                     "/files/snapshots/hall/link.jpg", "/files/events.db", "/files/snapshots/", "/files/snapshots/hall",
                     "/files/snapshots/hall/2026-12-07/../2026-12-07/1-zone_enter.jpg"):
            status, _, body = request(site.port, "GET", path)
            assert status == 404 and b"not for the page" not in body, path
    finally:
        site.stop()


def test_with_a_password_every_url_needs_a_login_and_works_after_it(tmp_path):
    site = filled_site(tmp_path, events=2, password=PasswordHash.of("correct horse"))
    try:
        snap = site.storage / "snapshots" / "a.jpg"
        snap.parent.mkdir(parents=True)
        snap.write_bytes(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
        site.store.update(1, snapshot_path="snapshots/a.jpg")
        urls = ("/", "/events", "/counts", "/status", "/metrics", "/live/hall.jpg", "/files/snapshots/a.jpg")
        for path in urls:
            status, headers, _ = request(site.port, "GET", path, {"Accept": "text/html"})
            assert status == 303 and headers["location"] == f"/login?next={path}", path
            assert request(site.port, "GET", path)[0] == 401, path
        assert request(site.port, "POST", "/api/review", {"Content-Type": "application/json"}, b"{}")[0] == 401
        assert request(site.port, "GET", "/static/style.css")[0] == 200  # the login page's look
        basic = {"Authorization": "Basic " + b64encode(b"prometheus:correct horse").decode()}
        assert request(site.port, "GET", "/metrics", basic)[0] == 200  # a scraper with the password
        wrong = {"Authorization": "Basic " + b64encode(b"prometheus:wrong").decode()}
        assert request(site.port, "GET", "/metrics", wrong)[0] == 401
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, headers, _ = request(site.port, "POST", "/login", form, b"password=correct+horse&next=/events")
        assert status == 303 and headers["location"] == "/events"
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie  # no TLS: no Secure
        session = {"Cookie": cookie.split(";")[0]}
        for path in urls:
            assert request(site.port, "GET", path, session)[0] == 200, path
        token = page_of(site.port, "/events", **session).csrf
        review = {**session, "Content-Type": "application/json", "X-CSRF-Token": token}
        assert request(site.port, "POST", "/api/review", review, b'{"ids": [2], "reviewed": true}')[0] == 200
        assert request(site.port, "POST", "/api/review", {**review, "X-CSRF-Token": "x"}, b'{"ids": [2], '
                                                                                     b'"reviewed": true}')[0] == 403
        assert request(site.port, "POST", "/logout", review)[0] == 303
        assert request(site.port, "GET", "/events", session)[0] == 401  # the session is over
        elsewhere = {**form, "Origin": "http://evil.example"}
        assert request(site.port, "POST", "/login", elsewhere, b"password=correct+horse")[0] == 403
        status, headers, _ = request(site.port, "POST", "/login", form, b"password=x&next=//evil.example/")
        assert status == 401
        status, headers, _ = request(site.port, "POST", "/login", form, b"password=correct+horse&next=//evil.example/")
        assert status == 303 and headers["location"] == "/"  # only a path on this site
    finally:
        site.stop()


def test_wrong_passwords_are_limited_per_address(tmp_path):
    site = filled_site(tmp_path, events=0, password=PasswordHash.of("pw"))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        for _ in range(FAILURES_ALLOWED):
            assert request(site.port, "POST", "/login", form, b"password=guess")[0] == 401
        status, headers, body = request(site.port, "POST", "/login", form, b"password=pw")  # even the right one
        assert status == 429 and 1 <= int(headers["retry-after"]) <= 60 and b"Too many wrong passwords" in body
    finally:
        site.stop()


@pytest.mark.servers
def test_a_browser_logs_in_with_the_password_and_the_cookie_is_http_only(tmp_path, browser):
    site = filled_site(tmp_path, events=3, password=PasswordHash.of("s3cret"))
    try:
        browser.delete_all_cookies()
        browser.get(f"http://127.0.0.1:{site.port}/events")
        assert browser.current_url.endswith("/login?next=/events")
        box = browser.find_element("name", "password")
        box.send_keys("wrong\n")
        until(browser, lambda d: "Wrong password" in d.page_source, 10, "the refusal")
        browser.find_element("name", "password").send_keys("s3cret\n")
        until(browser, lambda d: d.current_url.endswith("/events"), 10, "the events page")
        assert [r["id"] for r in rows_shown(browser)] == [3, 2, 1]
        [cookie] = browser.get_cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert browser.execute_script("return document.cookie") == ""  # no script reads the session
        browser.find_element("id", "logout").click()
        until(browser, lambda d: d.current_url.endswith("/login"), 10, "the login page")
    finally:
        site.stop()


def test_tls_serves_https_and_a_bad_certificate_is_a_one_line_error(tmp_path):
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
            "subjectAltName = IP:127.0.0.1", "-keyout", "key.pem", "-out", "cert.pem")
    tls = WebTls(tmp_path / "cert.pem", tmp_path / "key.pem")
    site = filled_site(tmp_path, events=1, tls=tls, password=PasswordHash.of("pw"))
    try:
        context = ssl.create_default_context(cafile=str(tls.cert))
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, headers, _ = request(site.port, "POST", "/login", form, b"password=pw", tls=context)
        assert status == 303 and "Secure" in headers["set-cookie"]
        with pytest.raises(Exception):
            request(site.port, "GET", "/status")  # plain HTTP on the TLS port: no answer
    finally:
        site.stop()
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    from yolo_app.errors import UserError

    with pytest.raises(UserError, match=r"^web.tls: cannot use .*bad.pem"):
        local_site(tmp_path / "other", Web(port=0, tls=WebTls(tmp_path / "bad.pem", tls.key)))


def test_the_monitor_refuses_a_page_open_to_other_machines_without_a_password(tmp_path):
    base = {"storage": str(tmp_path / "data"), "cameras": [{"name": "hall", "source": str(PERSON_VIDEO)}]}
    cases = [({"bind": "0.0.0.0"}, r"web.bind: 0.0.0.0 lets other machines in: set web.password_env"),
             ({"bind": "0.0.0.0", "password_env": "YOLO_APP_TEST_UNSET"},
              r"web.password_env: the environment variable YOLO_APP_TEST_UNSET is not set"),
             ({"port": 70000}, r"web.port: must be between 0 and 65535")]
    for web, message in cases:
        config = tmp_path / "monitor.yaml"
        config.write_text(json.dumps({**base, "web": web}))
        run = subprocess.run([sys.executable, "-m", "yolo_app", "monitor", "--config", str(config)],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and re.search(message, run.stderr), run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_twenty_pages_watching_one_camera_cost_one_drawing_a_period():
    now = [0.0]
    camera = StillCamera(np.full((720, 1280, 3), 60, np.uint8))
    live = LivePictures({"hall": camera}, fps=4.0, clock=lambda: now[0])
    pictures = {id(live.picture("hall")) for _ in range(20)}
    assert live.drawn == 1 and len(pictures) == 1
    now[0] += 0.3  # a period later, no new frame: nothing to draw
    live.picture("hall")
    assert live.drawn == 1
    camera.latest = type(camera.latest)(frame=camera.latest.frame)  # a new frame
    for _ in range(20):
        live.picture("hall")
    assert live.drawn == 2
    now[0] += 0.1  # a new frame within the period: the pages get the last picture
    camera.latest = type(camera.latest)(frame=camera.latest.frame)
    live.picture("hall")
    assert live.drawn == 2
    with pytest.raises(KeyError):
        live.picture("garden")


def test_events_list_reads_a_released_database_that_no_monitor_has_migrated(tmp_path):
    copy = tmp_path / "events.db"
    shutil.copy(RELEASED_DB, copy)
    run = subprocess.run([sys.executable, "-m", "yolo_app", "events", "list", "--db", str(copy)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and run.stderr.strip() == "24 event(s)", run.stderr
    assert copy.read_bytes() == RELEASED_DB.read_bytes()  # read only: the migration is the monitor's
