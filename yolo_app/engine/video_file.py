"""Writing BGR frames to an MP4: H.264 (MPEG-4 Part 2 where this FFmpeg has no libx264), each frame at
``i / rate`` (``CFR``: a file's annotation, the source's count and rate), at its own capture time (``PTS``:
a recording of a live view, an evidence clip; frames come at whatever rate the camera and the network
allowed), or at its time in the source (``SOURCE``: a file whose frames come at uneven intervals).

One encoder for every video the app writes: the annotated video and its segments (engine/sinks.py,
engine/checkpoint.py), the GUI's recordings, the monitor's evidence clips. What differs between them is
an ``Encoding``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from yolo_app.engine.cpu import LEDGER
from yolo_app.errors import RuntimeFailure

MILLISECOND = Fraction(1, 1000)
# Frame i at i / rate; each frame at its capture time, from the first frame's; each at its time in the source,
# from the source's start (a segment of an annotated video then starts where it is in the source). The last
# two in milliseconds.
CFR, PTS, SOURCE = "cfr", "pts", "source"


@dataclass(frozen=True)
class Encoding:
    """How a kind of video is encoded."""

    crf: int = 21  # x264's constant quality: lower is better and bigger
    faststart: bool = False  # index first, so a browser plays it while it downloads (a second pass at close)
    crop_odd: bool = False  # odd sides lose a pixel for 4:2:0, which every player plays; else kept in 4:4:4


ANNOTATED = Encoding()  # the user's own frames at their exact size
# The monitor's clips are played in browsers (4:2:0 only, index first) and kept for days (a higher crf).
EVIDENCE = Encoding(crf=23, faststart=True, crop_odd=True)


def video_codec(choice: str = "auto") -> str:
    """H.264 (libx264) where this FFmpeg build has it, else MPEG-4 Part 2."""
    if choice != "auto":
        return choice
    try:
        av.codec.Codec("libx264", "w")
        return "libx264"
    except av.codec.codec.UnknownCodecError:
        return "mpeg4"


def video_frame(image: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    """A BGR image as the encoder's input. For 4:2:0, OpenCV's BGR->I420 (BT.601 limited range, as
    FFmpeg's) is several times faster than the encoder's own conversion: half of the encoding cost."""
    if pix_fmt == "yuv420p":
        return av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
    return av.VideoFrame.from_ndarray(image, format="bgr24")


class Mp4Writer:
    """An MP4 being written at ``path`` from frames of ``width`` x ``height``. Frames of another size (a
    stream that changed resolution mid-way) are scaled to that size. ``close()`` finishes the file; naming
    it complete or partial is the caller's (``AtomicPath``)."""

    def __init__(self, path: Path, width: int, height: int, rate: Fraction, codec: str = "auto",
                 timing: str = CFR, encoding: Encoding = ANNOTATED) -> None:
        self.timing = timing
        self.source_size = (width, height)
        even = width % 2 == 0 and height % 2 == 0
        if encoding.crop_odd:
            width, height, even = width - width % 2, height - height % 2, True
        self.size = (width, height)
        self.frames = 0
        self._t0: float | None = None
        self._last_pts = -1
        self._period_ms = max(1, round(1000 / rate))
        self._shift_ms = 0  # added to every time after one went back
        codec_name = video_codec(codec)
        options = {"movflags": "+faststart"} if encoding.faststart else {}
        try:
            self._container = av.open(str(path), mode="w", format="mp4", options=options)
            self._stream = self._container.add_stream(codec_name, rate=rate)
        except (av.FFmpegError, ValueError) as exc:
            raise RuntimeFailure(f"cannot create {path}: {exc}") from None
        self._stream.width, self._stream.height = self.size
        # 4:2:0 needs even sides; odd ones keep their exact size in 4:4:4 rather than being cropped.
        self._stream.pix_fmt = "yuv420p" if even else "yuv444p"
        if timing != CFR:
            self._stream.codec_context.time_base = MILLISECOND
        if codec_name == "libx264":
            # One encoder thread on small CPUs, where inference needs every core; x264's own choice elsewhere.
            threads = "1" if (os.cpu_count() or 1) <= 4 else "0"
            # Uneven timing has no B-frames: x264 derives their decode times from the first frames' spacing, so a
            # gap (a camera away for 6 s) left the file saying it lasts a fraction of a second.
            no_bframes = {"bf": "0"} if timing != CFR else {}
            # veryfast with its simplest motion search: 40 % less encoding time (768x432: 3.0 -> 1.8 CPU ms a
            # frame) for 5 % more bytes and 0.1 dB less PSNR; superfast's other changes double the file instead.
            self._stream.options = {"crf": str(encoding.crf), "preset": "veryfast", "x264-params": "me=dia:subme=1",
                                    "threads": threads, **no_bframes}
        else:
            self._stream.bit_rate = 4 * width * height

    def write(self, image: np.ndarray, pts_s: float | None = None) -> None:
        """Encode a BGR frame; ``pts_s``: its capture time (``PTS``; None: now) or its time in the source
        (``SOURCE``; None: a frame period after the last)."""
        with LEDGER.charge("encode"):
            frame = video_frame(self._fitted(image), self._stream.pix_fmt)
            if self.timing == CFR:
                frame.pts = self.frames  # frame i at i / rate, in the stream's time base
            else:
                if pts_s is None and self.timing == PTS:
                    pts_s = time.monotonic()
                if self._t0 is None:
                    self._t0 = pts_s if self.timing == PTS else 0.0
                ms = -1 if pts_s is None else round((pts_s - self._t0) * 1000) + self._shift_ms
                if ms <= self._last_pts:  # no time, or one that went back (an MPEG-TS discontinuity): one frame
                    # period after the last, and the frames after it keep their spacing from there (MP4 needs
                    # strictly increasing times; packing them a millisecond apart played them all at once)
                    if pts_s is not None:
                        self._shift_ms += self._last_pts + self._period_ms - ms
                    ms = self._last_pts + self._period_ms
                self._last_pts = ms
                frame.pts, frame.time_base = ms, MILLISECOND
            self.frames += 1
            self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()

    def _fitted(self, image: np.ndarray) -> np.ndarray:
        shape = (image.shape[1], image.shape[0])
        if shape == self.size:
            return image
        if shape == self.source_size:  # an odd side cropped for 4:2:0
            return np.ascontiguousarray(image[:self.size[1], :self.size[0]])
        return cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
