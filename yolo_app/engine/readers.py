"""Frame readers: one class per way of getting pixels, all with the same small interface.

``open_reader(spec)`` opens and probes a source in the caller's thread, so a bad input fails before
anything starts; ``reader.frames()`` then yields ``(bgr_image, pts_seconds | None, path | None)``
from the capture thread. Files and streams go through PyAV (exact container timestamps, rational
frame rates, open/read time-outs); cameras through OpenCV (V4L2, DirectShow, AVFoundation).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit
from typing import Callable, Iterator, TypeVar

import av
import cv2
import numpy as np

from yolo_app.engine.cpu import LEDGER
from yolo_app.engine.sources import SourceSpec
from yolo_app.engine.types import SourceInfo, SourceKind
from yolo_app.errors import RuntimeFailure, UserError

CAMERA_OPEN_TIMEOUT_S = 5.0
# A file's display rotation (clockwise degrees) as the cv2.rotate that shows its frames as players do.
TURNS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
INDEXED_CONTAINERS = ("mov", "mp4")  # containers whose frame count comes from an index we can trust

RawFrame = tuple[np.ndarray, "float | None", "str | None"]
T = TypeVar("T")


class FrameReader:
    """What every reader does: describe its source (``info``), yield frames, close. A file can also
    seek (``seekable``): the GUI's timeline and looping, and a resumed run continuing after a frame."""

    info: SourceInfo
    seekable = False
    opened_at: float | None = None  # time.monotonic() when open_reader opened it: a live source queues from then

    def frames(self) -> Iterator[RawFrame]:
        raise NotImplementedError

    def seek(self, seconds: float) -> None:
        """Make ``frames()`` continue at the first frame at or after ``seconds`` (only when seekable)."""
        raise RuntimeFailure(f"{self.info.uri}: a live source cannot seek")

    def continue_after(self, frames_done: int, last_pts: float | None) -> None:
        """Make ``frames()`` start right after frame ``frames_done - 1`` (resuming an interrupted run)."""
        raise RuntimeFailure(f"{self.info.uri}: a live source cannot be resumed")

    def interrupt(self) -> None:
        """Make a ``frames()`` that waits for its source return soon (any thread); the capture thread's stop."""

    def drop_backlog(self) -> None:
        """Before the first frame is read: skip what a live source queued up since it was opened, where the
        reader can (``SourceSupervisor`` opens it anew); nothing for the others."""

    def close(self) -> None:
        """Release the source; safe to call twice."""


def open_reader(spec: SourceSpec) -> FrameReader:
    if spec.kind is SourceKind.CAMERA:
        reader: FrameReader = CameraReader(spec)
    elif spec.kind in (SourceKind.IMAGE, SourceKind.IMAGES):
        reader = ImageSequenceReader(spec)
    else:
        reader = AvReader(spec)
    reader.opened_at = time.monotonic()
    return reader


def call_with_timeout(fn: Callable[[], T], seconds: float | None, message: str = "", *,
                      stop: threading.Event | None = None, discard: Callable[[T], None] | None = None) -> T | None:
    """Run a blocking open in a helper thread so a dead device or host cannot hang the caller: a UserError
    (``message``) after ``seconds`` (None: no limit), None as soon as ``stop`` is set. What ``fn`` returns
    after the caller gave up is handed to ``discard`` (to close it) instead of leaking."""
    box: dict[str, object] = {}
    lock = threading.Lock()
    done = threading.Event()
    abandoned = False

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the caller's thread
            box["error"] = exc
        with lock:
            done.set()
            late = abandoned
        if late and "value" in box and discard is not None:
            discard(box["value"])  # type: ignore[arg-type]

    threading.Thread(target=target, name="open-source", daemon=True).start()
    deadline = None if seconds is None else time.monotonic() + seconds
    while not done.wait(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))):
        gave_up = stop is not None and stop.is_set()
        timed_out = deadline is not None and time.monotonic() >= deadline
        if gave_up or timed_out:
            with lock:
                if not done.is_set():  # else it finished just now: take its result after all
                    abandoned = True
            if abandoned:
                if timed_out and not gave_up:
                    raise UserError(message)
                return None
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


class AvReader(FrameReader):
    """Video files, the demo clip and network streams, decoded by FFmpeg through PyAV."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        is_stream = spec.kind is SourceKind.STREAM
        started = time.monotonic()
        opening = spec.stream.open_timeout_s
        try:
            if is_stream:
                _check_host(spec)
                self._container = call_with_timeout(
                    lambda: av.open(spec.uri, options=_stream_options(spec),
                                    timeout=(opening, spec.stream.read_timeout_s)),
                    opening + 1.0, f"stream {spec.shown} did not answer within {opening + 1.0:.0f} s",
                )
            else:
                self._container = av.open(spec.uri)
        except av.FFmpegError as exc:
            if is_stream and time.monotonic() - started >= opening - 0.5:
                raise UserError(f"stream {spec.shown} did not answer within {opening:.0f} s") from None
            if is_stream:
                raise UserError(f"{spec.shown}: {_stream_refusal(spec, exc)}") from None
            raise UserError(f"{spec.uri}: not a readable video ({_ffmpeg_reason(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise UserError(f"{spec.shown}: has no video track")
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = 1  # decoding runs ~10x faster than inference: leave the cores to torch
        cc = self._stream.codec_context
        if not cc.width or not cc.height:
            self._container.close()
            raise UserError(f"{spec.shown}: video track has no picture size (corrupt header)")
        rate = self._stream.average_rate or self._stream.guessed_rate
        indexed = any(name in INDEXED_CONTAINERS for name in self._container.format.name.split(","))
        live = is_stream and (urlparse_scheme(spec.uri) not in ("http", "https") or self._container.duration is None)
        count = self._stream.frames or None
        self._turn = None if is_stream else display_turn(spec.uri)
        sideways = self._turn in (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE)
        self.info = SourceInfo(
            kind=spec.kind, uri=spec.shown, width=cc.height if sideways else cc.width,
            height=cc.width if sideways else cc.height,
            fps=Fraction(rate) if rate else None, frame_count=None if live else count, live=live,
            uneven=not live and _uneven(self._stream, indexed),
        )
        self._expected = count if indexed else None  # frames the index promises; fewer means truncated
        self._seek_to: float | None = None
        self._seeked = False
        self._resume: tuple[int, float] | None = None

    def continue_after(self, frames_done: int, last_pts: float | None) -> None:
        """Make ``frames()`` start right after frame ``frames_done - 1``, whose time was ``last_pts``:
        exact by container timestamp, so a resumed run sees the same frames as an uninterrupted one."""
        if last_pts is None:
            raise ValueError("resuming a video needs the last frame's timestamp")
        self._resume = (frames_done, last_pts)

    @property
    def seekable(self) -> bool:  # type: ignore[override]
        return not self.info.live

    def seek(self, seconds: float) -> None:
        """Call it from the thread that iterates ``frames()``; it also restarts a finished iteration
        (looping)."""
        self._seek_to = max(0.0, seconds)

    def frames(self) -> Iterator[RawFrame]:
        start = self._stream.start_time or 0
        base = self._stream.time_base
        decoded = 0
        skip_until: float | None = None
        skip_through: float | None = None  # resuming: frames up to this time are done already
        if self._resume is not None:
            (decoded, skip_through), self._resume = self._resume, None
            self._container.seek(int(skip_through / base) + start, stream=self._stream, backward=True)
        while True:
            if self._seek_to is not None:
                skip_until, self._seek_to = self._seek_to, None
                self._seeked = True
                # Land on the keyframe before the target, then decode forward to it.
                self._container.seek(int(skip_until / base) + start, stream=self._stream, backward=True)
            try:
                for frame in self._container.decode(self._stream):
                    if self._seek_to is not None:
                        break
                    pts = float((frame.pts - start) * base) if frame.pts is not None and base else None
                    if skip_until is not None and pts is not None and pts < skip_until - 1e-6:
                        continue
                    if skip_through is not None and pts is not None and pts <= skip_through + 1e-6:
                        continue
                    skip_through = None
                    skip_until = None
                    decoded += 1
                    with LEDGER.charge("colour"):
                        # One thread: PyAV (17+) otherwise starts and ends swscale workers for every frame,
                        # which took 1.6 instead of 0.3 ms a frame and a core from the network meanwhile.
                        image = frame.to_ndarray(format="bgr24", threads=1)
                        if self._turn is not None:
                            image = cv2.rotate(image, self._turn)
                    yield image, pts, None
            except av.FFmpegError as exc:
                if self.info.live and isinstance(exc, av.ExitError):  # our read time-out ended the wait
                    raise TimeoutError(f"no frames for {self.spec.stream.read_timeout_s:g} s with the connection "
                                       f"open (stalled)") from None
                if self.info.live:  # a live stream that errors has dropped: its supervisor reconnects
                    raise ConnectionError(f"connection lost ({_ffmpeg_reason(exc)})") from None
                raise UserError(f"{self.spec.uri}: corrupt or truncated video after frame {decoded} "
                                f"({_ffmpeg_reason(exc)})") from None
            if self._seek_to is None:
                break
        if not (self.info.live or self._seeked) and self._expected and decoded < self._expected:
            raise UserError(f"{self.spec.uri}: truncated video: decoded {decoded} of {self._expected} frames")

    def close(self) -> None:
        self._container.close()


def _uneven(stream: av.VideoStream, indexed: bool) -> bool:
    """Whether a file's frames may come at uneven intervals. An MP4 or MOV says so: its index gives the exact
    average rate, which then differs from the rate that represents every frame's time (FFmpeg's guess).
    Matroska, WebM or MPEG-TS carry each frame's time finer than a frame period and no index to average over
    (FFmpeg guesses their rate from the first frames), so their frames may come at any time; AVI's one tick a
    frame cannot."""
    average, base = stream.average_rate, stream.base_rate
    if indexed:
        return bool(average and base and average != base)
    return bool(base and stream.time_base and stream.time_base * base < 1)


def display_turn(path: str) -> int | None:
    """How a video file's frames must turn to be seen as players, and OpenCV (so Ultralytics), show them:
    phones store portrait video as landscape frames and a rotation in the container. FFmpeg hands that
    rotation over with decoded frames only, so the file's first frame is decoded apart (a few ms); None when
    it needs no turn (or names one that is not a quarter turn)."""
    try:
        with av.open(path) as probe:
            stream = probe.streams.video[0]
            stream.thread_count = 1
            first = next(probe.decode(stream), None)
    except (av.FFmpegError, IndexError):  # its reading fails with the file's own error where it matters
        return None
    return TURNS.get(round(-first.rotation) % 360) if first is not None else None


class CameraReader(FrameReader):
    """A local camera by index or device path, read with OpenCV."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        target: int | str = int(spec.uri) if spec.uri.isdigit() else spec.uri
        cap = call_with_timeout(
            lambda: _open_camera(target), CAMERA_OPEN_TIMEOUT_S,
            f"camera {spec.uri} did not answer within {CAMERA_OPEN_TIMEOUT_S:.0f} s",
        )
        if cap is None:
            raise UserError(f"camera {spec.uri} cannot be opened (no such camera, or it is in use)")
        self._cap, first = cap
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self._first: np.ndarray | None = first
        self.info = SourceInfo(
            kind=SourceKind.CAMERA, uri=spec.uri, width=first.shape[1], height=first.shape[0],
            fps=Fraction(fps).limit_denominator(1001) if fps and fps > 0 else None, frame_count=None, live=True,
        )

    def frames(self) -> Iterator[RawFrame]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first, None, None
        while True:
            ok, image = self._cap.read()
            if not ok or image is None:
                raise ConnectionError(f"camera {self.spec.uri} stopped delivering frames")
            yield image, None, None

    def close(self) -> None:
        self._cap.release()


def list_cameras(max_index: int = 8) -> list[int]:
    """Camera indexes that really open and deliver a frame. On Linux only existing /dev/videoN are
    tried, so a machine without cameras answers at once."""
    candidates = range(max_index)
    if sys.platform.startswith("linux"):
        candidates = [i for i in candidates if Path(f"/dev/video{i}").exists()]
    found = []
    for index in candidates:
        opened = _open_camera(index)
        if opened is not None:
            opened[0].release()
            found.append(index)
    return found


def _open_camera(target: int | str) -> tuple[cv2.VideoCapture, np.ndarray] | None:
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)  # probing prints backend noise; our error says it once
    try:
        cap = cv2.VideoCapture(target)
    finally:
        logging.setLogLevel(level)
    if not cap.isOpened():
        cap.release()
        return None
    ok, first = cap.read()  # a camera that opens but yields nothing (in use, no permission) is unusable
    if not ok or first is None:
        cap.release()
        return None
    return cap, first


class ImageSequenceReader(FrameReader):
    """One image file, or an ordered sequence of them (a folder or glob)."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._paths = list(spec.paths)
        first = _read_image(self._paths[0])
        self._first: np.ndarray | None = first
        self.info = SourceInfo(
            kind=spec.kind, uri=spec.uri, width=first.shape[1], height=first.shape[0],
            fps=None, frame_count=len(self._paths), live=False,
        )

    def continue_after(self, frames_done: int, last_pts: float | None = None) -> None:
        """Make ``frames()`` start at image number ``frames_done`` (resuming an interrupted run)."""
        self._paths = self._paths[frames_done:]
        self._first = None

    def frames(self) -> Iterator[RawFrame]:
        for i, path in enumerate(self._paths):
            image = self._first if i == 0 and self._first is not None else _read_image(path)
            self._first = None
            yield image, None, str(path)

    def close(self) -> None:
        self._first = None


def _read_image(path: Path) -> np.ndarray:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    # libjpeg decodes a cut-off JPEG into a grey-bottomed picture (printing a line to stderr), and libpng
    # prints its own error: such files are turned away here, before OpenCV sees them.
    defect = _image_defect(data)
    if defect:
        raise UserError(f"{path}: {defect}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # imread's decoder, on these bytes
    if image is None:
        raise UserError(f"{path}: not a readable image")
    return image


TRUNCATED_IMAGE = "image is truncated (the file ends before the picture does)"


def _image_defect(data: bytes) -> str | None:
    """Why a JPEG or PNG cannot be whole: no picture data, or no end marker after its last scan (JPEG) or no
    IEND chunk (PNG): the file was cut off."""
    if data.startswith(b"\xff\xd8"):
        last_scan = data.rfind(b"\xff\xda")  # the end marker cannot occur inside a scan's coded data
        if last_scan < 0:
            return "not a readable image (a JPEG header without picture data)"
        return None if data.find(b"\xff\xd9", last_scan) >= 0 else TRUNCATED_IMAGE
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data.rfind(b"IEND") < 0:
        return TRUNCATED_IMAGE
    return None


def _stream_options(spec: SourceSpec) -> dict[str, str]:
    # FFmpeg analyses 5 s of a stream by default before it opens: every (re)connect of a camera took ~3 s.
    # One second still finds its size and rate (measured on an H.264 RTSP camera: 2.9 s -> 0.9 s).
    options = {"analyzeduration": "1000000"}
    if urlparse_scheme(spec.uri).startswith("rtsp"):
        options["rtsp_transport"] = spec.stream.transport
    return options


def _check_host(spec: SourceSpec) -> None:
    """A host name that does not resolve is told as such (FFmpeg only says "Input/output error")."""
    host = urlsplit(spec.uri).hostname
    if host:
        try:
            socket.getaddrinfo(host, None)
        except (socket.gaierror, UnicodeError):
            raise UserError(f"{spec.shown}: unknown host '{host}' (check the camera's address)") from None


def _stream_refusal(spec: SourceSpec, exc: av.FFmpegError) -> str:
    """Why a stream would not open, in the words a camera's owner needs: wrong password, wrong path,
    nothing listening."""
    # FFmpeg's own words, not str(exc): that also holds the URL, whose port may read 401 or 403.
    reason = _ffmpeg_reason(exc)
    if isinstance(exc, av.HTTPUnauthorizedError) or "401 Unauthorized" in reason:
        return "the camera refused the user name or password (401 Unauthorized)"
    if isinstance(exc, av.HTTPForbiddenError) or "403 Forbidden" in reason:
        return "the camera does not allow this user to watch this stream (403 Forbidden)"
    if isinstance(exc, av.HTTPNotFoundError) or "404 Not Found" in reason:
        return f"the camera has no stream at {urlsplit(spec.uri).path or '/'} (404 Not Found); check the path"
    if isinstance(exc, ConnectionRefusedError) or "refused" in reason.lower():
        parts = urlsplit(spec.uri)
        return f"nothing answers at {parts.hostname}:{parts.port or 'default port'} (connection refused)"
    return f"cannot open stream ({reason})"


def urlparse_scheme(uri: str) -> str:
    return uri.split("://", 1)[0].lower() if "://" in uri else ""


def _ffmpeg_reason(exc: av.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc).split(":")[0] or type(exc).__name__
