"""Real RTSP cameras (GStreamer's RTSP server serving H.264 from real footage): both transports, the
errors a camera's owner needs told apart, outages of 10 s and 60 s, a stall with the connection open,
and a camera that comes back at another resolution. Timings have margins; the strict figures are the
benchmarks'."""

from __future__ import annotations

import json
import resource
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import BOTTLE_VIDEO, frame_lines, run_cli, wait_for
from rtsp_camera import RtspCamera, require_rtsp_server
from yolo_app.engine.capture import CaptureThread
from yolo_app.engine.channel import Channel, ChannelClosed
from yolo_app.engine.readers import open_reader
from yolo_app.engine.sources import parse_source
from yolo_app.engine.supervisor import ReconnectPolicy, SourceState, SourceSupervisor
from yolo_app.engine.types import ChannelPolicy
from yolo_app.settings import StreamOptions

pytestmark = pytest.mark.servers

BACK_WITHIN_S = 5.0  # after the camera's return (#16)


@pytest.fixture
def camera():
    require_rtsp_server()
    cam = RtspCamera(BOTTLE_VIDEO)
    cam.start()
    yield cam
    cam.stop()


class Watch:
    """A supervised RTSP source read by a real capture thread; every frame's arrival time and size."""

    def __init__(self, url: str, policy: ReconnectPolicy = ReconnectPolicy(), stream: StreamOptions = StreamOptions()):
        spec = parse_source(url, stream)[0]
        self.events = []
        self.frames: list[tuple[float, tuple[int, int]]] = []
        self.supervisor = SourceSupervisor(spec, open_reader(spec), policy=policy, on_event=self.events.append)
        self.channel = Channel(4, ChannelPolicy.LATEST)
        self.capture = CaptureThread(self.supervisor, [self.channel], source_id="cam")
        self.capture.start()
        self._thread = threading.Thread(target=self._take, daemon=True)
        self._thread.start()

    def _take(self) -> None:
        while True:
            try:
                frame = self.channel.get(timeout=0.5)
            except TimeoutError:
                continue
            except ChannelClosed:
                return
            self.frames.append((time.monotonic(), (frame.width, frame.height)))

    def frames_since(self, t: float) -> list:
        return [f for f in self.frames if f[0] > t]

    def stop(self) -> None:
        self.capture.stop()
        self.channel.cancel()
        assert self.capture.join(3)


def outage(camera: RtspCamera, seconds: float) -> None:
    watch = Watch(camera.url())
    try:
        wait_for(lambda: len(watch.frames) >= 10, 30, "the camera's first frames")
        camera.stop()
        wait_for(lambda: any(e.state is SourceState.RECONNECTING for e in watch.events), 15, "the drop noticed")
        time.sleep(seconds)
        camera.start()
        back = time.monotonic()
        first = wait_for(lambda: watch.frames_since(back), 30, "frames after the return")[0][0]
        assert first - back <= BACK_WITHIN_S, f"back {first - back:.1f} s after the camera returned"
        returned = [e for e in watch.events if e.state is SourceState.RUNNING and e.outage_s is not None]
        assert returned and returned[-1].outage_s >= seconds
        assert watch.supervisor.reconnects == 1
    finally:
        watch.stop()


def test_after_a_10_s_outage_frames_come_back_within_5_s(camera):
    outage(camera, 10)


@pytest.mark.slow
def test_after_a_60_s_outage_frames_come_back_within_5_s(camera):
    outage(camera, 60)


def test_a_stalled_camera_is_a_drop_detected_within_the_read_timeout(camera):
    watch = Watch(camera.url(), stream=StreamOptions(read_timeout_s=2.0))
    try:
        wait_for(lambda: len(watch.frames) >= 10, 30, "the camera's first frames")
        camera.stall()
        stalled = time.time()
        drop = wait_for(lambda: [e for e in watch.events if e.state is SourceState.RECONNECTING], 15, "the stall")[0]
        assert drop.at - stalled < 2 * 2.0 + 2.0  # the read time-out (a camera's RTCP reports restart it once)
        assert drop.reason == "no frames for 2 s with the connection open (stalled)"
        camera.resume()
        resumed = time.monotonic()
        wait_for(lambda: watch.frames_since(resumed), 30, "frames after the stall")
    finally:
        watch.stop()


def test_a_camera_back_at_another_resolution_keeps_running_at_it(camera):
    watch = Watch(camera.url())
    try:
        wait_for(lambda: len(watch.frames) >= 5, 30, "the camera's first frames")
        assert watch.frames[-1][1] == (640, 360)
        camera.stop()
        camera.start(size="320x180")
        back = time.monotonic()
        wait_for(lambda: len(watch.frames_since(back)) >= 5, 30, "frames at the new size")
        assert watch.frames[-1][1] == (320, 180)
    finally:
        watch.stop()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_annotate_reads_a_camera_over_either_transport(camera, transport, tmp_path):
    proc = run_cli("annotate", camera.url(), "--rtsp-transport", transport, "--max-frames", "20", "--no-video",
                   "--backend", "torch", "--imgsz", "320", "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr
    [record] = tmp_path.glob("*.detections.jsonl")
    lines = frame_lines(record)
    assert lines and all((line["width"], line["height"]) == (640, 360) for line in lines)
    assert any(d["class_name"] == "bottle" for line in lines for d in line["detections"])  # the real footage


def _ports_reading_403() -> list[int]:
    """Every unprivileged port whose number contains 403 (1403 … 4030-4039, 14030-14039 … 40300-40399 … 65403),
    first those outside the range the system hands out to outgoing connections."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except OSError:
        low, high = 32768, 60999
    return sorted((p for p in range(1024, 65536) if "403" in str(p)), key=lambda p: low <= p <= high)


def _start_on_a_free_port_reading_403(cam: RtspCamera) -> None:
    """Serve on a free port whose number contains 403: the URL in FFmpeg's error must not pass for the status."""
    for port in _ports_reading_403():
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        cam.port = port
        try:
            cam.start()
        except RuntimeError as exc:
            if "cannot listen" not in str(exc):
                raise
            continue  # taken between the probe and the server's bind: the next one
        return
    pytest.fail(f"none of the {len(_ports_reading_403())} ports whose number contains 403 is free on 127.0.0.1")


def test_a_wrong_password_a_wrong_path_and_a_dead_port_are_told_apart(tmp_path):
    require_rtsp_server()
    cam = RtspCamera(BOTTLE_VIDEO, auth="admin:secret")
    _start_on_a_free_port_reading_403(cam)  # CI once drew 44035 and a 404 was told as a 403
    try:
        cases = [
            (cam.url("admin:wrong"), "the camera refused the user name or password (401 Unauthorized)"),
            (cam.url("admin:secret", path="/nope"),
             "the camera has no stream at /nope (404 Not Found); check the path"),
            ("rtsp://admin:secret@no-such-camera.invalid/cam", "unknown host 'no-such-camera.invalid'"),
        ]
        for url, message in cases:
            proc = run_cli("annotate", url, "--out", str(tmp_path), timeout=60)
            assert proc.returncode == 2, proc.stderr
            [line] = proc.stderr.strip().splitlines()
            assert message in line and "secret" not in line and "wrong" not in line  # never a password
        ok = run_cli("annotate", cam.url("admin:secret"), "--max-frames", "3", "--no-video", "--backend", "torch",
                     "--imgsz", "320", "--out", str(tmp_path), timeout=120)
        assert ok.returncode == 0, ok.stderr
        assert "secret" not in (tmp_path / "127.0.0.1_{}_cam.detections.jsonl".format(cam.port)).read_text()
    finally:
        cam.stop()
    proc = run_cli("annotate", cam.url(), "--out", str(tmp_path), timeout=60)
    assert proc.returncode == 2 and f"nothing answers at 127.0.0.1:{cam.port} (connection refused)" in proc.stderr


def test_a_monitored_camera_back_at_another_resolution_keeps_its_zones_fitting(camera, model, tmp_path, caplog):
    from yolo_app.monitor.config import load_config
    from yolo_app.monitor.runner import Monitor

    path = tmp_path / "monitor.yaml"
    path.write_text(json.dumps({"storage": str(tmp_path / "data"), "cameras": [{
        "name": "shelf", "source": camera.url(), "offline_after": 2.0,
        "zones": [{"name": "middle", "polygon": [[200, 100], [440, 100], [440, 300], [200, 300]]}],
        "lines": [{"name": "split", "points": [[320, 0], [320, 360]]}]}]}))
    monitor = Monitor(load_config(path), model=model)
    shelf = monitor.cameras["shelf"]
    monitor.start()
    try:
        wait_for(lambda: shelf.frames >= 5, 60, "the camera's first frames")
        camera.stop()
        camera.start(size="320x180")
        before = shelf.frames
        wait_for(lambda: shelf.frames >= before + 10 and shelf.state == "running", 60, "frames at the new size")
        assert shelf.zones[0].zone.polygon == ((100, 50), (220, 50), (220, 150), (100, 150))
        assert shelf.lines[0].line.points == ((160, 0), (160, 180))
        assert ("camera shelf now sends 320x180 (was 640x360): its zones, lines and masks are scaled to fit"
                in caplog.text)
    finally:
        monitor.stop()


CAMERA_FPS = 10  # what the test camera sends


def test_the_capacity_benchmark_ramps_to_two_cameras_that_keep_1_fps_and_prints_one_json_line(camera, capsys):
    """What the figures must be by construction. The one time it needs: each camera kept 1 fps (7 to 10 on two
    loaded cores here)."""
    import psutil

    from yolo_app.monitor import capacity

    me = psutil.Process()
    seconds, warmup = 4.0, 4.0
    rss_before = me.memory_info().rss / 2**20
    cpu_before, started = sum(me.cpu_times()[:2]), time.monotonic()
    assert capacity.main([camera.url(), camera.url(), "--seconds", str(seconds), "--warmup", str(warmup),
                          "--min-fps", "1"]) == 0
    wall, cpu_spent = time.monotonic() - started, sum(me.cpu_times()[:2]) - cpu_before
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux: KiB
    out = capsys.readouterr()
    ramp = [json.loads(line) for line in out.err.strip().splitlines()]
    final = json.loads(out.out.strip().splitlines()[-1])
    assert [line["cameras"] for line in ramp] == [1, 2]  # every count up to the URLs given, each sustained
    assert final == {**ramp[-1], "cameras_sustained": 2, "min_fps": 1.0}  # the last measurement and the verdict
    for line in ramp:
        n, fps = line["cameras"], line["fps_per_camera"]
        assert set(line) == {"cameras", "inference", "frames_per_call", "fps_per_camera", "latency_p95_ms",
                             "dropped", "cpu_percent", "rss_mb"}
        assert line["inference"] == "shared" and 1.0 <= line["frames_per_call"] <= n  # a frame per camera at most
        assert 1.0 <= fps["min"] <= fps["median"]
        if n == 1:
            assert fps["min"] == fps["median"]
        # Frames counted in the window over its length: never above what the camera sends, but for a second's
        # frames late from before the window; with those dropped by newest-wins, never above what the cameras sent
        # in the window (its end overrun and a late second: 2 s).
        assert fps["median"] <= CAMERA_FPS * (seconds + 1) / seconds
        assert isinstance(line["dropped"], int) and line["dropped"] >= 0
        assert n * fps["median"] * seconds + line["dropped"] <= n * CAMERA_FPS * (seconds + 2)  # n <= 2: median = mean
        assert 0 < line["latency_p95_ms"] < wall * 1e3  # captured and detected during the call
        # This process's CPU over the window (percent of one core), within what the whole call spent; its
        # memory while the cameras ran, in MiB: under the process's peak, and not below half what it held before
        # (it then also held a model and decoders; a unit slip is 2**10 off either way).
        assert 0 < line["cpu_percent"] <= 100 * (cpu_spent + 0.05) / seconds
        assert rss_before * 0.5 < line["rss_mb"] <= peak_rss + 1


def test_the_capacity_ramp_stops_at_the_first_camera_count_below_min_fps(monkeypatch):
    from yolo_app.monitor import capacity

    measured = []

    def measure(urls, seconds, warmup, **kwargs):  # the fps each count would keep: 9, 7, 4 …
        measured.append(len(urls))
        fps = {1: 9.0, 2: 7.0, 3: 4.0}.get(len(urls), 1.0)
        return {"cameras": len(urls), "fps_per_camera": {"min": fps, "median": fps}}

    monkeypatch.setattr(capacity, "measure", measure)
    lines = []
    final = capacity.ramp([f"rtsp://cam{i}" for i in range(8)], 1.0, 1.0, min_fps=5.0, report=lines.append)
    assert measured == [1, 2, 3]  # not 4, 6, 8: the count below 5 fps ends the ramp
    assert [json.loads(line)["cameras"] for line in lines] == [1, 2, 3]
    assert final == {"cameras": 3, "fps_per_camera": {"min": 4.0, "median": 4.0}, "cameras_sustained": 2,
                     "min_fps": 5.0}
    assert capacity.ramp(["rtsp://cam0"], 1.0, 1.0, min_fps=10.0, report=lines.append)["cameras_sustained"] == 0
