"""Drives tests/rtsp_server.py (GStreamer's RTSP server under the system Python) as an IP camera the tests
can power off, stall and bring back, on the same port, at the same or another resolution."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
PACKAGES = ("gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
            "gstreamer1.0-plugins-ugly gstreamer1.0-libav")


def rtsp_server_missing() -> str | None:
    """Why the RTSP test camera cannot run here, or None."""
    try:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                                "from gi.repository import GstRtspServer"], capture_output=True, text=True)
    except OSError as exc:
        return f"no {SYSTEM_PYTHON} ({exc.strerror})"
    if probe.returncode == 0:
        return None
    detail = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else ""
    return f"GStreamer's RTSP server is missing for {SYSTEM_PYTHON}: apt-get install {PACKAGES} ({detail})"


def require_rtsp_server() -> None:
    """The RTSP tests must run (CI installs the server): missing, they fail and say what to install."""
    missing = rtsp_server_missing()
    if missing:
        pytest.fail(f"the RTSP tests need a real RTSP camera: {missing}; .ci/run installs it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspCamera:
    def __init__(self, video: Path, *, size: str = "640x360", fps: int = 10, frames: int = 100,
                 auth: str | None = None) -> None:
        self.video, self.size, self.fps, self.frames, self.auth = video, size, fps, frames, auth
        self.port = free_port()
        self._proc: subprocess.Popen | None = None

    def url(self, credentials: str | None = None, path: str = "/cam") -> str:
        who = f"{credentials}@" if credentials else ""
        return f"rtsp://{who}127.0.0.1:{self.port}{path}"

    def start(self, size: str | None = None) -> None:
        """Power on (again, on the same port), optionally at another resolution; returns once it serves."""
        self.size = size or self.size
        args = [SYSTEM_PYTHON, str(SERVER), str(self.video), str(self.port), "--size", self.size,
                "--fps", str(self.fps), "--frames", str(self.frames)]
        if self.auth:
            args += ["--auth", self.auth]
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
        line = self._proc.stdout.readline()
        if line.strip() != "ready":
            self._proc.kill()
            raise RuntimeError(f"the RTSP server did not start: {line}{self._proc.stderr.read()}")

    def stop(self) -> None:
        """A power cut: every connection drops, the port stops answering."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None

    def stall(self) -> None:
        """The encoder hangs: connections stay open, no frame comes."""
        self._command("stall")

    def resume(self) -> None:
        self._command("resume")

    def _command(self, text: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(text + "\n")
        self._proc.stdin.flush()
