"""A loopback camera for tests: MJPEG over HTTP (multipart/x-mixed-replace), as many IP cameras serve it,
looping the frames of a real video at its own rate. ``stop()`` drops every client and the listening
socket, like a camera losing power; ``start()`` brings it back on the same port."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import cv2

BOUNDARY = "yoloappframe"


def jpeg_frames(video: Path, count: int, start: int = 0) -> list[bytes]:
    out = []
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= start:
                out.append(cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"))[1].tobytes())
            if len(out) == count:
                break
    return out


class MjpegCamera:
    def __init__(self, frames: list[bytes], fps: float = 10.0, port: int = 0) -> None:
        self.frames = frames
        self.fps = fps
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}/video.mjpg"
        self._server: ThreadingHTTPServer | None = None
        self._alive = threading.Event()
        self.served = 0
        self.connections: list[int] = []  # frames written to each client, in the order they connected

    def start(self) -> None:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                i = 0
                camera.connections.append(0)
                mine = len(camera.connections) - 1
                try:
                    while camera._alive.is_set():
                        data = camera.frames[i % len(camera.frames)]
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         f"{len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                        camera.served += 1
                        camera.connections[mine] += 1
                        i += 1
                        time.sleep(1 / camera.fps)
                except OSError:
                    pass  # the client went away, or we were stopped

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._alive.set()
        threading.Thread(target=self._server.serve_forever, name="mjpeg-camera", daemon=True).start()

    def stop(self) -> None:
        self._alive.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        time.sleep(0.3)  # let the streaming handlers see the flag and close their sockets


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
