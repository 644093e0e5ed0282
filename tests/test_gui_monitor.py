"""The monitoring window, driven offscreen with pytest-qt, on a real monitor running the person clip."""

import threading

import cv2
import numpy as np
import pytest
import yaml

from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QWidget  # noqa: E402

from conftest import read_video  # noqa: E402
from yolo_app.engine.supervisor import SourceState  # noqa: E402
from yolo_app.gui.events_panel import ALL_CAMERAS, ALL_TYPES, ClipPlayer  # noqa: E402
from yolo_app.gui.geometry_editor import LINE, MASK, ZONE  # noqa: E402
from yolo_app.gui import monitor_window  # noqa: E402
from yolo_app.gui.monitor_window import MonitorWindow, open_monitor_dialog  # noqa: E402
from yolo_app.monitor.config import load_config  # noqa: E402
from yolo_app.monitor.events import Event  # noqa: E402
from yolo_app.monitor.evidence import encode_clip  # noqa: E402

WAIT_MS = 30000
ENTRANCE = [[0, 0], [200, 0], [200, 150], [0, 150]]


@pytest.fixture
def config_path(tmp_path, clips, weights):
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({
        "model": str(weights), "storage": "./data",
        "cameras": [
            {"name": "door", "source": str(clips["person"]), "loop": True, "realtime": True, "classes": ["person"],
             "zones": [{"name": "entrance", "polygon": ENTRANCE}],
             "alerts": [{"on": "zone_enter", "zone": "entrance", "snapshot": True}]},
            {"name": "yard", "source": str(tmp_path / "no-such-camera.mp4"), "offline_after": 1},
        ]}, sort_keys=False))
    return path


@pytest.fixture
def window(qtbot, config_path, model):
    win = MonitorWindow(load_config(config_path), model=model)
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitUntil(lambda: win.monitor is not None and win.view.image is not None, timeout=WAIT_MS)
    yield win
    win.revert()  # no "discard unsaved changes?" question at teardown
    win.close()
    assert win.wait_stopped(15)


def pixels(qimage) -> np.ndarray:
    qimage = qimage.convertToFormat(qimage.Format.Format_RGB888)
    ptr = qimage.constBits()
    ptr.setsize(qimage.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(qimage.height(), qimage.bytesPerLine())
    return rows[:, :qimage.width() * 3].reshape(qimage.height(), qimage.width(), 3).copy()  # the QImage is freed


def click(qtbot, view, x, y, double=False):
    """A click on source pixel (x, y); double: press, release, then the double-click, as a mouse sends them."""
    pos = view.to_widget(x, y).toPoint()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=pos)
    if double:
        qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=pos)


def close_to(points, expected, tol=2.0):
    return len(points) == len(expected) and all(
        abs(px - ex) <= tol and abs(py - ey) <= tol for (px, py), (ex, ey) in zip(points, expected))


def add_event(window, **fields) -> Event:
    event = Event(**{"camera": "door", "type": "line_cross", "label": "person", "track_id": 7, "zone": "corridor",
                     "direction": "in", "confidence": 0.91, **fields})
    window.monitor.store.add(event)
    return event


def wait_row(qtbot, window, event_id, present=True):
    def check():
        window.events.refresh()
        assert (window.events.row_of(event_id) is not None) == present
    qtbot.waitUntil(check, timeout=WAIT_MS)
    return window.events.row_of(event_id)


def test_the_live_view_shows_frames_and_says_when_a_camera_is_not_live(qtbot, window):
    view = window.view
    assert (view.image.width(), view.image.height()) == (768, 432)
    assert pixels(view.image).mean() > 40  # a real picture, not a black frame
    assert view.banner is None

    window.camera_box.setCurrentText("yard")  # its file does not exist: it never delivers a frame
    qtbot.waitUntil(lambda: view.image is None and view.placeholder.startswith("Offline since"), timeout=WAIT_MS)
    assert "reconnecting" in view.placeholder
    qtbot.waitUntil(lambda: any(e.type == "camera_offline" and e.camera == "yard" for e in window.events.events),
                    timeout=WAIT_MS)

    window.camera_box.setCurrentText("door")
    qtbot.waitUntil(lambda: view.image is not None and view.banner is None, timeout=WAIT_MS)
    live = pixels(view.image).astype(int)
    cam = window.monitor.cameras["door"]
    cam.stop()  # the camera's thread ends; then pretend its stream dropped
    assert cam.join(10)
    cam.source.state = SourceState.RECONNECTING
    qtbot.waitUntil(lambda: view.banner == "Reconnecting…", timeout=5000)
    grey = pixels(view.image).astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() == 0  # the last frame, greyed: plainly not live
    assert 5 < grey.mean() < live.mean()


def test_drawing_editing_and_saving_zones_and_lines(qtbot, window, config_path):
    view, cam = window.view, window.monitor.cameras["door"]
    assert [(s.kind, s.name) for s in view.shapes] == [(ZONE, "entrance")]
    assert window.counts.item(0, 2).text().startswith("now ")

    # Deleting a zone an alert names cannot be saved: the config would not load. The file is untouched.
    before = config_path.read_text()
    click(qtbot, view, 100, 75)
    assert view.selected == 0
    window.actions["delete"].trigger()
    assert view.shapes == [] and view.dirty
    assert not window.save()
    assert "no zone named 'entrance'" in window.error_box.text()
    assert config_path.read_text() == before
    window.actions["revert"].trigger()
    assert [s.name for s in view.shapes] == ["entrance"] and not view.dirty

    # A zone: three clicks and a double-click; a line: two clicks.
    window.actions["zone"].trigger()
    corners = [(330, 300), (620, 300), (620, 425), (330, 425)]
    for x, y in corners[:-1]:
        click(qtbot, view, x, y)
    click(qtbot, view, *corners[-1], double=True)
    assert view.mode == "select" and window.actions["select"].isChecked()
    zone = view.shapes[-1]
    assert zone.kind == ZONE and close_to(zone.points, corners)
    window.actions["line"].trigger()
    click(qtbot, view, 100, 380)
    click(qtbot, view, 700, 380)
    line = view.shapes[-1]
    assert line.kind == LINE and close_to(line.points, [(100, 380), (700, 380)])

    # Drag a vertex of the zone.
    start, end = view.to_widget(330, 300).toPoint(), view.to_widget(300, 280).toPoint()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view, end)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=end)
    corners[0] = (300, 280)
    assert close_to(zone.points, corners)

    # Rename in the side table; a name already used is refused.
    rows = {window.counts.item(r, 0).text(): r for r in range(window.counts.rowCount())}
    window.counts.item(rows[zone.name], 0).setText("table")
    window.counts.item(rows[line.name], 0).setText("table")
    assert "already used" in window.error_box.text()
    window.counts.item(rows[line.name], 0).setText("corridor")
    assert [s.name for s in view.shapes] == ["entrance", "table", "corridor"]

    assert window.actions["save"].isEnabled()
    window.actions["save"].trigger()
    saved = load_config(config_path).camera("door")
    assert [z.name for z in saved.zones] == ["entrance", "table"]
    assert close_to(saved.zones[1].polygon, corners) and close_to(saved.zones[0].polygon, ENTRANCE)
    assert [ln.name for ln in saved.lines] == ["corridor"]
    assert close_to(saved.lines[0].points, [(100, 380), (700, 380)])
    assert saved.alerts[0].zone == "entrance"  # the rest of the camera is kept
    assert config_path.with_name("monitor.yaml.bak").read_text() == before
    # Applied live: the monitor counts with the new geometry, and the table shows its counts.
    assert [z.name for z in cam.cam.zones] == ["entrance", "table"] and [ln.name for ln in cam.cam.lines] == [
        "corridor"]
    assert set(cam.counts()) == {"entrance", "table", "corridor"}
    assert not view.dirty and not window.actions["save"].isEnabled()
    qtbot.waitUntil(lambda: window.counts.item(2, 2).text().startswith("in "), timeout=5000)


def test_a_mask_drawn_and_saved_holds_back_what_stands_in_it_and_the_toggle_shows_it_greyed(qtbot, window,
                                                                                           config_path):
    view, cam = window.view, window.monitor.cameras["door"]
    qtbot.waitUntil(lambda: cam.latest is not None and len(cam.latest.detections) > 0, timeout=WAIT_MS)
    window.actions["mask"].trigger()
    corners = [(0, 200), (767, 200), (767, 431), (0, 431)]  # the floor: every person's feet are on it
    for x, y in corners[:-1]:
        click(qtbot, view, x, y)
    click(qtbot, view, *corners[-1], double=True)
    assert view.shapes[-1].kind == MASK and window.counts.item(1, 2).text().startswith("ignored")
    window.actions["save"].trigger()
    saved = load_config(config_path).camera("door")
    assert len(saved.masks) == 1 and close_to(saved.masks[0], corners)
    assert saved.zones[0].name == "entrance"  # zones and alerts kept

    def held() -> bool:  # a frame the detector looked at, after the mask: its person held back by the mask
        latest = cam.latest
        why = latest.detections.data.get("held_back") if latest is not None and latest.inferred else None
        return why is not None and len(why) > 0 and set(why) == {"mask"}
    qtbot.waitUntil(held, timeout=WAIT_MS)
    result = cam.latest
    plain, greyed = cam.render(result), cam.render(result, held_back=True)
    x1, y1, x2, y2 = (int(v) for v in result.detections.xyxy[0])
    assert np.array_equal(plain[:, :x1 - 3], greyed[:, :x1 - 3])  # only at the held-back box
    assert np.abs(plain.astype(int) - greyed).sum() > 0
    assert plain[300:430].mean() < result.frame.image[300:430].mean() - 10  # the masked floor is shaded
    assert abs(plain[0:150, 300:].mean() - result.frame.image[0:150, 300:].mean()) < 3  # the wall above: not
    window.actions["held"].trigger()
    assert window.show_held_back


def test_events_table_thumbnails_and_filters(qtbot, window, clips):
    storage = window.config.storage
    frame = read_video(clips["person"])[0][10]
    relpath = "snapshots/door/test/1-line_cross.jpg"
    (storage / relpath).parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(storage / relpath), frame)
    event = add_event(window, snapshot_path=relpath)
    no_snapshot = add_event(window, type="zone_enter", zone="entrance", direction=None)

    table = window.events.table
    row = wait_row(qtbot, window, event.id)
    assert window.events.row_of(no_snapshot.id) < row  # newest first
    texts = [table.item(row, c).text() for c in range(1, table.columnCount())]
    assert texts[1:7] == ["door", "line_cross", "person#7", "corridor", "in", "0.91"]
    thumb = table.item(row, 0).data(Qt.ItemDataRole.DecorationRole)
    assert thumb is not None and thumb.width() == 96 and thumb.height() == 54
    assert table.item(window.events.row_of(no_snapshot.id), 0).text() == "—"

    window.events.type_box.setCurrentText("zone_enter")
    assert window.events.row_of(event.id) is None and window.events.row_of(no_snapshot.id) is not None
    window.events.type_box.setCurrentText(ALL_TYPES)
    window.events.camera_box.setCurrentText("yard")
    assert window.events.row_of(event.id) is None
    assert all(e.camera == "yard" for e in window.events.events)
    window.events.camera_box.setCurrentText(ALL_CAMERAS)
    assert window.events.row_of(event.id) is not None


def test_double_click_plays_the_clip_or_says_what_is_missing(qtbot, window, clips):
    frames = read_video(clips["person"])[0][:12]
    relpath = "clips/door/test/2-zone_enter.mp4"
    encode_clip([(i / 10, cv2.imencode(".jpg", f)[1].tobytes()) for i, f in enumerate(frames)],
                window.config.storage / relpath)
    event = add_event(window, type="zone_enter", zone="entrance", direction=None, clip_path=relpath)
    gone = add_event(window, clip_path="clips/door/test/3-deleted.mp4")
    bare = add_event(window, type="object_seen")
    table = window.events.table
    row = wait_row(qtbot, window, event.id)
    assert table.item(row, table.columnCount() - 1).text() == "▶"

    table.scrollToItem(table.item(row, 2))
    pos = table.visualItemRect(table.item(row, 2)).center()
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=pos)  # as a mouse does: press, release,
    qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=pos)  # then the double-click
    player = window.events.player
    assert isinstance(player, ClipPlayer) and player.isVisible()
    qtbot.waitUntil(lambda: player.play_button.text() == "Replay", timeout=WAIT_MS)  # played to its end
    assert player.frames_shown == 12
    assert pixels(player.view.image).mean() > 40

    window.events.open_evidence(window.events.events[window.events.row_of(gone.id)])
    assert "not on disk" in window.events.error_box.text() and "3-deleted.mp4" in window.events.error_box.text()
    window.events.open_evidence(window.events.events[window.events.row_of(bare.id)])
    assert "no clip or snapshot" in window.events.error_box.text()


def test_closing_the_window_stops_the_monitor_without_blocking(qtbot, window, monkeypatch):
    """The monitor's stop is held until the test lets it go: a close that waited for it would only return once
    the hold timed out, with the stop still unfinished."""
    monitor = window.monitor
    release, finished = threading.Event(), threading.Event()
    stop = monitor.stop

    def held_stop(**kwargs):
        release.wait(60)
        stop(**kwargs)
        finished.set()

    monkeypatch.setattr(monitor, "stop", held_stop)
    window.close()
    assert not finished.is_set() and not release.is_set()  # close returned with the stop still held
    release.set()
    assert window.wait_stopped(30) and finished.is_set()
    assert all(cam.ended for cam in monitor.cameras.values())
    qtbot.waitUntil(lambda: not [t for t in threading.enumerate() if t.name.startswith(("camera:", "monitor-"))],
                    timeout=2000)


def test_file_monitor_opens_the_chosen_config(qtbot, config_path, tmp_path, monkeypatch, model):
    real_monitor = monitor_window.Monitor
    monkeypatch.setattr(monitor_window, "Monitor",
                        lambda config, model=None, **kw: real_monitor(config, model=shared, **kw))
    shared = model  # the session's model: loading the weights again would only cost time
    parent = QWidget()
    qtbot.addWidget(parent)
    warnings = []
    monkeypatch.setattr(monitor_window.QMessageBox, "warning", lambda _p, title, text: warnings.append(text))
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - name: door\n    source: x.mp4\n    zones: [{name: a, polygon: [[0, 0], [1, 1]]}]\n")
    chosen = iter([(str(bad), ""), ("", ""), (str(config_path), "")])
    monkeypatch.setattr(monitor_window.QFileDialog, "getOpenFileName", lambda *a, **k: next(chosen))
    assert open_monitor_dialog(parent) is None
    assert warnings and "bad.yaml: cameras[0].zones[0].polygon" in warnings[0]
    assert open_monitor_dialog(parent) is None  # cancelled
    win = open_monitor_dialog(parent)
    assert isinstance(win, MonitorWindow) and win.isVisible() and win.isWindow()
    qtbot.waitUntil(lambda: win.monitor is not None, timeout=WAIT_MS)
    stopped = win.stopped
    win.close()
    assert stopped.wait(15)
