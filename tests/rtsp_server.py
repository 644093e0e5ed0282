"""A real RTSP camera for the tests: GStreamer's RTSP server (gst-rtsp-server, as IP cameras and NVR test
rigs use) serving H.264 at rtsp://127.0.0.1:PORT/cam, made from a real video's frames played in a loop
at their own rate.

Runs under the system Python, which has PyGObject and the GStreamer bindings (Debian:
gir1.2-gst-rtsp-server-1.0, python3-gi, gstreamer1.0-plugins-{base,good,ugly}, gstreamer1.0-libav):

    /usr/bin/python3 tests/rtsp_server.py VIDEO PORT [--size WxH] [--fps N] [--frames N] [--auth USER:PASSWORD]

It prints "ready" once it serves. Commands on stdin, one a line: "stall" (stop sending frames and keep
every connection open, as a camera whose encoder hangs), "resume", "quit". Killing the process is a
power cut: connections drop and the port stops answering.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)


def decode(video: str, width: int, height: int, count: int) -> list[bytes]:
    """The first ``count`` frames of ``video`` as I420 at width x height."""
    pipeline = Gst.parse_launch(
        f'filesrc location="{video}" ! decodebin ! videoconvert ! videoscale ! '
        f"video/x-raw,format=I420,width={width},height={height} ! appsink name=sink sync=false")
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    frames = []
    while len(frames) < count:
        sample = sink.emit("try-pull-sample", 5 * Gst.SECOND)
        if sample is None:
            break
        buffer = sample.get_buffer()
        frames.append(buffer.extract_dup(0, buffer.get_size()))
    pipeline.set_state(Gst.State.NULL)
    if not frames:
        raise SystemExit(f"rtsp_server: no frames decoded from {video}")
    return frames


class Camera(GstRtspServer.RTSPMediaFactory):
    """One shared pipeline: appsrc fed by a thread at the frame rate, H.264, RTP."""

    def __init__(self, frames: list[bytes], width: int, height: int, fps: int) -> None:
        super().__init__()
        self.frames, self.fps = frames, fps
        self.caps = f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1"
        self.running = threading.Event()
        self.running.set()
        self.set_shared(True)

    def do_create_element(self, url):  # noqa: N802 - GStreamer's name
        return Gst.parse_launch(
            f"( appsrc name=src is-live=true do-timestamp=true format=time caps={self.caps} ! videoconvert ! "
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={self.fps} ! "
            f"rtph264pay name=pay0 pt=96 config-interval=1 )")

    def do_configure(self, media):  # noqa: N802 - GStreamer's name
        src = media.get_element().get_child_by_name("src")
        done = threading.Event()
        media.connect("unprepared", lambda *_: done.set())
        threading.Thread(target=self._feed, args=(src, done), daemon=True).start()

    def _feed(self, src, done: threading.Event) -> None:
        i, period = 0, 1.0 / self.fps
        next_at = time.monotonic()
        while not done.is_set():
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))
            if not self.running.is_set():
                continue  # stalled: the connection stays open, nothing is sent
            data = self.frames[i % len(self.frames)]
            if src.emit("push-buffer", Gst.Buffer.new_wrapped(data)) != Gst.FlowReturn.OK:
                return
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("video")
    parser.add_argument("port", type=int)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--auth", default=None, metavar="USER:PASSWORD")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    camera = Camera(decode(args.video, width, height, args.frames), width, height, args.fps)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.auth:
        user, password = args.auth.split(":", 1)
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role("viewer")
        permissions.add_permission_for_role("viewer", "media.factory.access", True)
        permissions.add_permission_for_role("viewer", "media.factory.construct", True)
        camera.set_permissions(permissions)
    server.get_mount_points().add_factory("/cam", camera)
    if server.attach(None) == 0:
        raise SystemExit(f"rtsp_server: cannot listen on port {args.port}")
    loop = GLib.MainLoop()

    def commands() -> None:
        for line in sys.stdin:
            command = line.strip()
            if command == "stall":
                camera.running.clear()
            elif command == "resume":
                camera.running.set()
            elif command == "quit":
                break
        GLib.idle_add(loop.quit)

    threading.Thread(target=commands, daemon=True).start()
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
