"""The source supervisor: a live source that drops or stalls comes back soon after it returns, without
hammering a host that is away; files pass through; stopping ends any wait. Real footage and real TCP
sockets stand in for the camera (its port open or closed); the RTSP server tests cover real streams."""

import dataclasses
import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import PERSON_VIDEO, ctrl_c_default, frame_lines, wait_for
from mjpeg_server import MjpegCamera, jpeg_frames
from yolo_app.engine.capture import CaptureThread
from yolo_app.engine.channel import Channel, ChannelClosed
from yolo_app.engine.readers import AvReader, FrameReader, open_reader
from yolo_app.engine.sources import SourceSpec, parse_source
from yolo_app.engine.supervisor import ReconnectPolicy, SourceState, SourceSupervisor, probe
from yolo_app.engine.types import ChannelPolicy, SourceInfo, SourceKind

FAST = ReconnectPolicy(offline_after_s=0.6, probe_every_s=0.1, backoff_s=(0.05, 1.0))
EPS = 1e-6  # a fake clock's sums of tenths


class FakeClock:
    """The supervisor's time, moving only when it waits: a wait of ``s`` seconds returns at once, ``s``
    later, after running what ``at`` put at or before then (the camera coming back). Outages and back-offs
    are then exact sums of the policy's intervals, whatever the machine's speed."""

    def __init__(self):
        self.now = 1000.0  # not 0: the supervisor reads a time of 0 as "no frame yet"
        self._due = []  # (time, action)

    def __call__(self):
        return self.now

    def at(self, when, action):
        self._due.append((when, action))

    def wait(self, event, seconds):
        if event.is_set():
            return True
        self.now += seconds
        for item in [d for d in self._due if d[0] <= self.now + EPS]:
            self._due.remove(item)
            item[1]()
        return event.is_set()


class FlakyReader(FrameReader):
    """A real clip, played as a live source that drops (the cable pulled) after ``fail_after`` frames."""

    def __init__(self, clip, fail_after=None):
        self._inner = AvReader(parse_source(str(clip))[0])
        self.info = dataclasses.replace(self._inner.info, live=True)
        self.fail_after = fail_after

    def frames(self):
        for i, item in enumerate(self._inner.frames()):
            if self.fail_after is not None and i == self.fail_after:
                raise ConnectionResetError("cable pulled")
            yield item

    def close(self):
        self._inner.close()


class Camera:
    """A camera's TCP port: listening while the camera is up, refused while it is down."""

    def __init__(self):
        self.port = None
        self._sock = None

    def up(self):
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port or 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]

    def down(self):
        self._sock.close()

    @property
    def spec(self):
        return SourceSpec(SourceKind.STREAM, f"rtsp://127.0.0.1:{self.port}/cam", "cam")


def collect(supervisor, count, timeout=20):
    """Frames from a capture thread reading ``supervisor`` until ``count`` arrived; then stop it."""
    channel = Channel(256, ChannelPolicy.ALL)
    capture = CaptureThread(supervisor, [channel], source_id="cam")
    capture.start()
    frames, deadline = [], time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        try:
            frames.append(channel.get(timeout=0.5))
        except ChannelClosed:
            break
        except TimeoutError:
            continue
    capture.stop()
    assert capture.join(10)
    return frames


def test_a_drop_while_the_host_is_away_is_only_probed_then_reopened_once_it_answers(clips):
    camera = Camera()
    camera.up()
    clock = FakeClock()
    events, opens = [], []

    def opener(spec):
        opens.append(clock())
        return FlakyReader(clips["person"])

    def on_event(event):
        events.append(event)
        if event.state is SourceState.RECONNECTING:  # the camera goes away as it drops, for 1.45 s
            camera.down()
            clock.at(clock() + 1.45, camera.up)

    supervisor = SourceSupervisor(camera.spec, FlakyReader(clips["person"], fail_after=5), policy=FAST,
                                  on_event=on_event, opener=opener, clock=clock, wait=clock.wait)
    frames = collect(supervisor, 5 + 20)
    assert len(frames) == 25 and [f.index for f in frames] == list(range(25))
    assert len(opens) == 1  # probes only while it was away: one full open, once the port answered
    states = [e.state for e in events]
    assert states[:4] == [SourceState.RUNNING, SourceState.RECONNECTING, SourceState.OFFLINE, SourceState.RUNNING]
    assert "connection lost" in events[1].reason
    offline, back = events[2], events[3]
    assert FAST.offline_after_s - EPS <= offline.outage_s <= FAST.offline_after_s + FAST.probe_every_s + EPS
    # back within a probe interval of its return (the open takes no time on this clock)
    assert 1.45 - EPS <= back.outage_s <= 1.45 + FAST.probe_every_s + EPS
    assert supervisor.reconnects == 1
    assert back.describe().startswith("cam: back after ")


def test_a_host_that_answers_but_fails_to_open_is_retried_with_back_off_up_to_its_longest(clips):
    camera = Camera()
    camera.up()  # the port answers throughout: the stream itself is not ready
    clock = FakeClock()
    opens = []

    def opener(spec):
        opens.append(clock())
        if len(opens) < 6:
            raise ConnectionError("503 Service Unavailable")
        return FlakyReader(clips["person"])

    policy = ReconnectPolicy(offline_after_s=60, probe_every_s=0.1, backoff_s=(0.05, 0.3))
    supervisor = SourceSupervisor(camera.spec, FlakyReader(clips["person"], fail_after=3), policy=policy,
                                  opener=opener, clock=clock, wait=clock.wait)
    frames = collect(supervisor, 3 + 10)
    assert len(frames) == 13 and len(opens) == 6
    gaps = [b - a for a, b in zip(opens, opens[1:])]
    # Each wait is the back-off (0.05 s, doubling, at most 0.3 s) or the probe interval, whichever is longer.
    assert gaps == pytest.approx([0.1, 0.1, 0.2, 0.3, 0.3], abs=EPS)


def test_a_camera_away_from_the_start_is_connected_when_it_comes(clips):
    camera = Camera()
    camera.up()
    camera.down()  # the port is known, nothing listens yet
    clock = FakeClock()
    events = []
    supervisor = SourceSupervisor(camera.spec, policy=FAST, on_event=events.append,
                                  opener=lambda spec: FlakyReader(clips["person"]), clock=clock, wait=clock.wait)
    started = clock()
    clock.at(started + 1.05, camera.up)
    assert supervisor.connect()
    assert 1.05 - EPS <= clock() - started <= 1.05 + FAST.probe_every_s + EPS  # opened at the first probe after
    assert [e.state for e in events] == [SourceState.OFFLINE]  # away for longer than offline_after_s
    assert len(collect(supervisor, 5)) == 5
    assert [e.state for e in events] == [SourceState.OFFLINE, SourceState.RUNNING, SourceState.ENDED]
    assert 1.05 - EPS <= events[1].outage_s <= 1.05 + FAST.probe_every_s + EPS


def test_stopping_promptly_ends_an_hour_long_wait_for_a_source_that_is_away(clips):
    camera = Camera()
    camera.up()
    waiting = threading.Event()

    def wait(event, seconds):  # the real wait, saying when the supervisor is in it
        waiting.set()
        return event.wait(seconds)

    policy = ReconnectPolicy(offline_after_s=3600, probe_every_s=3600)  # without a stop it would wait an hour
    supervisor = SourceSupervisor(camera.spec, FlakyReader(clips["person"], fail_after=2), policy=policy, wait=wait,
                                  on_event=lambda e: e.state is SourceState.RECONNECTING and camera.down())
    channel = Channel(16, ChannelPolicy.ALL)
    capture = CaptureThread(supervisor, [channel], source_id="cam")
    capture.start()
    assert waiting.wait(30)
    assert supervisor.state is SourceState.RECONNECTING
    capture.stop()
    channel.cancel()
    assert capture.join(5)
    assert supervisor.state is SourceState.ENDED


class Connection(FrameReader):
    """A live camera's connection as the network hands it over: frame k leaves the camera k / fps after the
    connection opened and waits in the socket's buffer until it is read, so a reader that starts late gets a
    burst of stale frames. Each frame's first pixel says which connection and frame it is; ``sent`` keeps
    when each left."""

    made = []  # every connection opened, in order

    def __init__(self, fps=20.0):
        self.number = len(Connection.made)
        Connection.made.append(self)
        self.opened_at = time.monotonic()
        self.fps = fps
        self.sent = {}
        self.closed = threading.Event()
        self.info = SourceInfo(SourceKind.STREAM, "rtsp://127.0.0.1/cam", 8, 8, None, None, live=True)

    def frames(self):
        k = 0
        while not self.closed.is_set():
            due = self.opened_at + k / self.fps
            if self.closed.wait(max(0.0, due - time.monotonic())):
                return
            image = np.zeros((8, 8, 3), np.uint8)
            image[0, 0] = (self.number, k // 256, k % 256)
            self.sent[k] = due
            yield image, None, None
            k += 1

    def close(self):
        self.closed.set()


def test_frames_queued_while_the_models_load_are_not_read_as_a_burst():
    """A live source is opened (the front end's check) a while before the models are ready: the frames it
    queued meanwhile are not read, so every frame captured left the camera after inference was ready, and
    ``--max-frames`` counts only such frames."""
    camera = Camera()
    camera.up()
    Connection.made.clear()
    first = Connection()
    supervisor = SourceSupervisor(camera.spec, first, policy=FAST, opener=lambda spec: Connection())
    ready = threading.Event()
    channel = Channel(64, ChannelPolicy.ALL)
    capture = CaptureThread(supervisor, [channel], source_id="cam", max_frames=10, wait_for=[ready])
    capture.start()
    first.closed.wait(1.0)  # the models load: 20 frames pile up in the first connection
    ready_at = time.monotonic()
    ready.set()
    frames = []
    while True:
        try:
            frames.append(channel.get(timeout=30))
        except ChannelClosed:
            break
    assert capture.join(10)
    assert first.closed.is_set() and not first.sent  # the checked connection was closed unread
    taken = [(int(f.image[0, 0, 0]), int(f.image[0, 0, 1]) * 256 + int(f.image[0, 0, 2])) for f in frames]
    assert [n for n, _ in taken] == [1] * 10 and [k for _, k in taken] == list(range(10))
    assert all(Connection.made[1].sent[k] >= ready_at for _, k in taken)


def test_without_reconnecting_a_drop_ends_the_source_with_what_happened(clips):
    supervisor = SourceSupervisor(parse_source(str(clips["person"]))[0], FlakyReader(clips["person"], fail_after=4),
                                  reconnect=False)
    with pytest.raises(ConnectionError, match="connection lost"):
        list(supervisor.frames())
    assert supervisor.state is SourceState.ENDED


def test_a_file_passes_through_and_ends(clips):
    events = []
    spec = parse_source(str(clips["bottle"]))[0]
    supervisor = SourceSupervisor(spec, open_reader(spec), on_event=events.append)
    assert len(list(supervisor.frames())) == 30
    assert [e.state for e in events] == [SourceState.RUNNING, SourceState.ENDED]
    assert supervisor.seekable


def test_probes_say_whether_a_stream_host_answers():
    camera = Camera()
    camera.up()
    assert probe(camera.spec)
    camera.down()
    assert not probe(camera.spec)
    assert not probe(SourceSpec(SourceKind.CAMERA, "/dev/video-not-there", "cam"))
    assert probe(SourceSpec(SourceKind.CAMERA, "0", "cam"))  # an index: only opening it tells


@pytest.mark.slow
def test_a_live_annotate_goes_on_after_its_camera_drops_and_says_so(tmp_path):
    """A real camera (MJPEG over HTTP) that loses power for 3 s mid-run: the run says so, goes on, and stops at
    --max-frames counted in frames read after the model was ready (each either detected or dropped by the
    newest-frame slot: nothing queued while the model loaded comes in as a burst)."""
    camera = MjpegCamera(jpeg_frames(PERSON_VIDEO, 40), fps=10)
    camera.start()
    proc = subprocess.Popen([sys.executable, "-m", "yolo_app", "annotate", camera.url, "--out", str(tmp_path),
                             "--no-video", "--max-frames", "60", "--backend", "torch", "--imgsz", "320"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)
    try:
        # The check's connection, closed once the model is ready, then the capture's: 10 frames into it, power off.
        wait_for(lambda: len(camera.connections) == 2 and camera.connections[1] >= 10, 240, "the capture's frames")
        camera.stop()  # the camera loses power for 3 s
        time.sleep(3.0)
        camera.start()
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
        camera.stop()
    assert proc.returncode == 0, err
    assert "dropped, reconnecting (" in err and "back after " in err
    [record] = tmp_path.glob("*.detections.jsonl")
    lines = frame_lines(record)
    indexes = [line["frame"] for line in lines]  # live: the newest frame wins, so some may be dropped
    assert indexes == sorted(set(indexes)) and indexes[-1] == 59
    found = re.search(r": (\d+) frames in [\d.]+ s \([\d.]+ FPS(?:, (\d+) dropped)?", out)
    assert found, out
    assert int(found.group(1)) == len(lines) and len(lines) + int(found.group(2) or 0) == 60
    gaps = [b["time"] - a["time"] for a, b in zip(lines, lines[1:])]
    assert max(gaps) > 2.5  # the outage is in the record's clock, not hidden
