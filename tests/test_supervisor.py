"""The source supervisor: a live source that drops or stalls comes back soon after it returns, without
hammering a host that is away; files pass through; stopping ends any wait. Real footage and real TCP
sockets stand in for the camera (its port open or closed); the RTSP server tests cover real streams."""

import dataclasses
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import PERSON_VIDEO, ctrl_c_default, frame_lines
from mjpeg_server import MjpegCamera, jpeg_frames
from yolo_app.engine.capture import CaptureThread
from yolo_app.engine.channel import Channel, ChannelClosed
from yolo_app.engine.readers import AvReader, FrameReader, open_reader
from yolo_app.engine.sources import SourceSpec, parse_source
from yolo_app.engine.supervisor import ReconnectPolicy, SourceState, SourceSupervisor, probe
from yolo_app.engine.types import ChannelPolicy, SourceKind

FAST = ReconnectPolicy(offline_after_s=0.6, probe_every_s=0.1, backoff_s=(0.05, 1.0))


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
    assert capture.join(2)
    return frames


def test_a_drop_while_the_host_is_away_is_only_probed_then_reopened_once_it_answers(clips):
    camera = Camera()
    camera.up()
    events, opens = [], []

    def opener(spec):
        opens.append(time.monotonic())
        return FlakyReader(clips["person"])

    def on_event(event):
        events.append(event)
        if event.state is SourceState.RECONNECTING:  # the camera goes away as it drops, for 1.5 s
            camera.down()
            threading.Timer(1.5, camera.up).start()

    supervisor = SourceSupervisor(camera.spec, FlakyReader(clips["person"], fail_after=5), policy=FAST,
                                  on_event=on_event, opener=opener)
    frames = collect(supervisor, 5 + 20)
    assert len(frames) == 25 and [f.index for f in frames] == list(range(25))
    assert len(opens) == 1  # probes only while it was away: one full open, once the port answered
    states = [e.state for e in events]
    assert states[:4] == [SourceState.RUNNING, SourceState.RECONNECTING, SourceState.OFFLINE, SourceState.RUNNING]
    assert "connection lost" in events[1].reason
    back = events[3]
    assert 1.4 < back.outage_s < 1.5 + 1.0  # back within a probe interval (and an open) of its return
    assert supervisor.reconnects == 1
    assert back.describe().startswith("cam: back after ")


def test_a_host_that_answers_but_fails_to_open_is_retried_with_back_off(clips):
    camera = Camera()
    camera.up()  # the port answers throughout: the stream itself is not ready
    opens = []

    def opener(spec):
        opens.append(time.monotonic())
        if len(opens) < 4:
            raise ConnectionError("503 Service Unavailable")
        return FlakyReader(clips["person"])

    supervisor = SourceSupervisor(camera.spec, FlakyReader(clips["person"], fail_after=3), policy=FAST, opener=opener)
    frames = collect(supervisor, 3 + 10)
    assert len(frames) == 13
    gaps = [b - a for a, b in zip(opens, opens[1:])]
    # Each wait is the back-off (0.05 s, doubling) or the probe interval (0.1 s), whichever is longer.
    assert len(opens) == 4 and all(gap >= 0.9 * least for gap, least in zip(gaps, (0.1, 0.1, 0.2)))


def test_a_camera_away_from_the_start_is_connected_when_it_comes(clips):
    camera = Camera()
    camera.up()
    camera.down()  # the port is known, nothing listens yet
    events = []
    supervisor = SourceSupervisor(camera.spec, policy=FAST, on_event=events.append,
                                  opener=lambda spec: FlakyReader(clips["person"]))
    threading.Timer(1.0, camera.up).start()
    started = time.monotonic()
    assert supervisor.connect()
    assert 0.9 < time.monotonic() - started < 2.0
    assert [e.state for e in events] == [SourceState.OFFLINE]  # away for longer than offline_after_s
    assert len(collect(supervisor, 5)) == 5
    assert [e.state for e in events] == [SourceState.OFFLINE, SourceState.RUNNING, SourceState.ENDED]
    assert events[1].outage_s > 0.9


def test_stopping_ends_the_wait_for_a_source_that_is_away(clips):
    camera = Camera()
    camera.up()
    supervisor = SourceSupervisor(camera.spec, FlakyReader(clips["person"], fail_after=2), policy=FAST,
                                  on_event=lambda e: e.state is SourceState.RECONNECTING and camera.down())
    channel = Channel(16, ChannelPolicy.ALL)
    capture = CaptureThread(supervisor, [channel], source_id="cam")
    capture.start()
    deadline = time.monotonic() + 10
    while supervisor.state is not SourceState.RECONNECTING and time.monotonic() < deadline:
        time.sleep(0.05)
    assert supervisor.state is SourceState.RECONNECTING
    stopped = time.monotonic()
    capture.stop()
    channel.cancel()
    assert capture.join(2) and time.monotonic() - stopped < 1.0
    assert supervisor.state is SourceState.ENDED


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
    camera = MjpegCamera(jpeg_frames(PERSON_VIDEO, 40), fps=10)
    camera.start()
    proc = subprocess.Popen([sys.executable, "-m", "yolo_app", "annotate", camera.url, "--out", str(tmp_path),
                             "--no-video", "--max-frames", "60", "--backend", "torch", "--imgsz", "320"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)
    try:
        assert "classes) on cpu" in proc.stdout.readline()  # the model is loaded: frames are being read
        time.sleep(2.0)
        camera.stop()  # the camera loses power for 3 s
        time.sleep(3.0)
        camera.start()
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        camera.stop()
    assert proc.returncode == 0, err
    assert "dropped, reconnecting (" in err and "back after " in err
    [record] = tmp_path.glob("*.detections.jsonl")
    lines = frame_lines(record)
    indexes = [line["frame"] for line in lines]  # live: the newest frame wins, so some are dropped
    assert len(lines) > 30 and indexes == sorted(set(indexes)) and indexes[-1] == 59
    gaps = [b["time"] - a["time"] for a, b in zip(lines, lines[1:])]
    assert max(gaps) > 2.5  # the outage is in the record's clock, not hidden
