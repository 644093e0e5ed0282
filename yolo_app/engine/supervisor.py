"""The source supervisor: the one place that opens a live source again after it drops or stalls.

Every pipeline reads through a ``SourceSupervisor``. For a file it only passes frames through and says
when they start and end. For a camera or a stream it keeps the frames coming across outages: a drop
(the connection lost or refused, the device gone) or a stall (an open connection with no frame within
the reader's read time-out) closes the reader, and the supervisor reopens it —
whatever the outage's length, back within a few seconds of the source's return:

- while the source is away it only *probes* it, about once a second, as cheaply as the source allows
  (a TCP connect to the camera's port; a device node that exists again), so a dead host is not hammered;
- a probe that answers is followed at once by a full reopen;
- only a source that answers and then fails to open (a camera still booting, refused credentials)
  is retried with back-off (1 s, 2 s, 4 s … at most 30 s).

Its state changes (starting, running, reconnecting, offline, ended) are published as ``SourceEvent``s:
the GUI shows them, the monitor turns them into camera_offline / camera_online events with the outage's
length, a live ``annotate`` logs them. Probing and waiting happen on the capture thread, inside
``frames()``; ``interrupt()`` (any thread) ends a wait at once.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import urlsplit

import av

from yolo_app.engine.readers import FrameReader, RawFrame, call_with_timeout, open_reader
from yolo_app.engine.sources import SourceSpec
from yolo_app.engine.types import SourceInfo, SourceKind
from yolo_app.errors import describe

log = logging.getLogger(__name__)

# What a live source raises when it drops; anything else is a bug or bad input and ends the run.
SOURCE_DROP_ERRORS = (ConnectionError, TimeoutError, OSError, av.FFmpegError)
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}
BACKLOG_S = 0.5  # a live source opened longer ago than this before its first read has frames piled up


class SourceState(str, enum.Enum):
    STARTING = "starting"  # not opened yet
    RUNNING = "running"  # frames are coming
    RECONNECTING = "reconnecting"  # dropped or stalled: probing, reopening
    OFFLINE = "offline"  # no frame for ``offline_after_s``: still probing
    ENDED = "ended"  # a file played to its end, or the supervisor was stopped


@dataclass(frozen=True)
class SourceEvent:
    """A change of a source's state, for whoever shows or logs it (any thread may receive it)."""

    source_id: str
    state: SourceState
    reason: str = ""  # why it dropped or what failed, one line
    outage_s: float | None = None  # seconds without a frame: OFFLINE so far, back to RUNNING in all
    at: float = field(default_factory=time.time)  # wall-clock time of the change

    def describe(self) -> str:
        """One line for a log or a banner."""
        if self.state is SourceState.RUNNING and self.outage_s is not None:
            return f"{self.source_id}: back after {self.outage_s:.1f} s without frames"
        text = {SourceState.RECONNECTING: "dropped, reconnecting", SourceState.OFFLINE: "offline, still trying",
                SourceState.ENDED: "ended", SourceState.RUNNING: "running",
                SourceState.STARTING: "starting"}[self.state]
        return f"{self.source_id}: {text}" + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class ReconnectPolicy:
    offline_after_s: float = 10.0  # no frame this long: OFFLINE (the monitor's camera_offline)
    probe_every_s: float = 1.0  # a source that is away is probed this often
    backoff_s: tuple[float, float] = (1.0, 30.0)  # a source that answers but fails to open: first, longest wait


def probe(spec: SourceSpec, timeout_s: float = 1.0) -> bool:
    """Whether the source looks reachable, without opening it: a TCP connect to a stream's host and
    port, the device node of a camera. True where nothing cheaper than a full open says more."""
    if spec.kind is SourceKind.STREAM:
        parts = urlsplit(spec.uri)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
        if not parts.hostname or port is None:
            return True
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout_s):
                return True
        except OSError:
            return False
    if spec.kind is SourceKind.CAMERA and not spec.uri.isdigit():
        return os.path.exists(spec.uri)
    return True


class SourceSupervisor(FrameReader):
    """A reader that keeps a live source going: give it the spec (to reopen) and the reader already
    opened, if any (the caller's fail-fast check); without a reader, ``connect()`` opens the first one."""

    def __init__(self, spec: SourceSpec, reader: FrameReader | None = None, *,
                 policy: ReconnectPolicy = ReconnectPolicy(),
                 on_event: Callable[[SourceEvent], None] | None = None,
                 opener: Callable[[SourceSpec], FrameReader] = open_reader, reconnect: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[threading.Event, float], object] = threading.Event.wait) -> None:
        self.spec = spec
        self.policy = policy
        self.on_event = on_event
        self.opener = opener
        self.reconnect = reconnect  # False: a drop ends the source (the caller reports it)
        self.state = SourceState.STARTING
        self.reconnects = 0
        self._reader = reader
        # The reconnect timing's time source and its interruptible wait (on ``_stop``): tests pass a fake
        # clock that moves only when waited on, so outages and back-offs are exact, not raced.
        self._clock = clock
        self._wait = wait
        self._stop = threading.Event()
        self._last_frame: float | None = None
        self._away_since: float | None = None  # when the last frame before an outage came
        # When the first reader was opened, until its first read (real time: what a live source has queued since).
        self._opened_at = None if reader is None else (reader.opened_at or time.monotonic())

    # the FrameReader role ----------------------------------------------------------------------------
    @property
    def info(self) -> SourceInfo:  # type: ignore[override]
        if self._reader is None:
            raise RuntimeError("connect() first")
        return self._reader.info

    @property
    def seekable(self) -> bool:  # type: ignore[override]
        return self._reader is not None and self._reader.seekable

    def seek(self, seconds: float) -> None:
        assert self._reader is not None
        self._reader.seek(seconds)

    def continue_after(self, frames_done: int, last_pts: float | None) -> None:
        assert self._reader is not None
        self._reader.continue_after(frames_done, last_pts)

    def interrupt(self) -> None:
        """End a wait for the source at once (any thread); ``frames()`` then returns."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        reader, self._reader = self._reader, None
        if reader is not None:
            _close_quietly(reader)
        if self.state is not SourceState.ENDED:
            self._publish(SourceState.ENDED)

    def connect(self) -> bool:
        """Open the source the first time, waiting (probing) while it is away; False when interrupted.
        A source that is away from the start is OFFLINE after ``offline_after_s`` like any other."""
        if self._reader is None:
            self._away_since = self._clock()
            self._reader = self._reopen("not reachable")
            self._opened_at = time.monotonic()
        return self._reader is not None

    def drop_backlog(self) -> None:
        """Called once the consumers are ready, before the first frame is read. A live source opened a while
        ago (the front end's check that it opens, then the models loading) has piled frames up in its
        connection: read now, they would come at once, stale, all stamped with the time they were read, and
        mostly be dropped by the newest-frame slot, while counting towards ``--max-frames``. It is opened
        anew instead, so the first frame read is a current one. Files, and a source opened just now, keep
        their reader."""
        reader, opened_at, self._opened_at = self._reader, self._opened_at, None
        if (reader is None or opened_at is None or not self.reconnect or not reader.info.live
                or time.monotonic() - opened_at < BACKLOG_S):
            return
        log.info("%s: opening it again, without the frames it queued while the models loaded", self.spec.name)
        _close_quietly(reader)
        self._reader = None
        self.connect()

    def frames(self) -> Iterator[RawFrame]:
        live = self.info.live
        while not self._stop.is_set():
            reader = self._reader
            if reader is None:
                return
            try:
                for item in reader.frames():
                    self._frame_arrived()
                    yield item
                    if self._stop.is_set():
                        return
                if not live:
                    self._publish(SourceState.ENDED)
                    return
                reason = "the source closed the connection"
            except SOURCE_DROP_ERRORS as exc:
                if not live:
                    raise
                reason = _drop_reason(exc)
            if not self.reconnect:
                self._publish(SourceState.ENDED, reason)
                raise ConnectionError(f"{self.spec.shown}: {reason}")
            _close_quietly(reader)
            self._away_since = self._last_frame or self._clock()
            self._publish(SourceState.RECONNECTING, reason)
            self._reader = self._reopen(reason)
            if self._reader is not None:
                self.reconnects += 1

    # inside --------------------------------------------------------------------------------------------
    def _frame_arrived(self) -> None:
        self._last_frame = self._clock()
        if self.state is not SourceState.RUNNING:
            away = self.state in (SourceState.RECONNECTING, SourceState.OFFLINE) and self._away_since is not None
            outage = self._last_frame - self._away_since if away else None  # type: ignore[operator]
            self._away_since = None
            self._publish(SourceState.RUNNING, outage_s=outage)

    def _reopen(self, reason: str) -> FrameReader | None:
        """Probe about once a second; a full open as soon as a probe answers; back-off only for a source
        that answers and then fails. None when interrupted."""
        backoff, longest = self.policy.backoff_s
        while not self._stop.is_set():
            wait = self.policy.probe_every_s
            if probe(self.spec, timeout_s=min(1.0, self.policy.probe_every_s)):
                tried = self._clock()
                try:
                    return self._open()
                except Exception as exc:  # noqa: BLE001 - any failure to open means try again later
                    reason = describe(exc)
                    # An open that waited out its time-out (a camera that accepts and sends nothing) has
                    # paced itself: the next try follows a probe, so its return is not missed by a long wait.
                    wait = max(wait, backoff - (self._clock() - tried))
                    log.info("%s answers but does not open (%s); next try in %.0f s", self.spec.name, reason, wait)
                    backoff = min(backoff * 2, longest)
            else:
                backoff = self.policy.backoff_s[0]  # the host went away again: its next answer is tried at once
            self._check_offline(reason)
            deadline = self._clock() + wait
            while not self._stop.is_set() and self._clock() < deadline:
                self._wait(self._stop, min(0.2, max(0.0, deadline - self._clock())))
                self._check_offline(reason)
        return None

    def _open(self) -> FrameReader | None:
        """The opener on a helper thread: an open can block for its whole time-out (a camera that answers
        and sends nothing), and stopping must not wait for it. None when interrupted; an open that
        finishes after that closes what it opened."""
        return call_with_timeout(lambda: self.opener(self.spec), None, stop=self._stop, discard=_close_quietly)

    def _check_offline(self, reason: str) -> None:
        if self.state is SourceState.OFFLINE or self._away_since is None:
            return
        away = self._clock() - self._away_since
        if away >= self.policy.offline_after_s:
            self._publish(SourceState.OFFLINE, reason, outage_s=away)

    def _publish(self, state: SourceState, reason: str = "", outage_s: float | None = None) -> None:
        self.state = state
        if self.on_event is not None:
            self.on_event(SourceEvent(self.spec.name, state, reason, outage_s))


def _drop_reason(exc: BaseException) -> str:
    """What happened to a live source, in words: a live stream does not "end"."""
    if isinstance(exc, TimeoutError):
        return str(exc) or "no frames within the read time-out (stalled)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return f"connection lost ({exc})" if str(exc) else "connection lost"
    if isinstance(exc, ConnectionError) and str(exc):
        return str(exc)
    return f"connection lost ({describe(exc)})"


def _close_quietly(reader: FrameReader) -> None:
    try:
        reader.close()
    except Exception:  # noqa: BLE001 - closing a dead device must not mask the real error
        log.debug("closing a dropped source failed", exc_info=True)
