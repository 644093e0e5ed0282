"""Joining encoded video segments into one MP4 and adding the source's audio, without re-encoding
the video.

Resumable runs encode their video in segments (see ``checkpoint``); at the end the segments are
concatenated packet by packet, the source's audio track is copied in beside them (re-encoded to AAC
only when its codec cannot live in MP4), and the file is written "faststart" (index first) so it
plays while it downloads.
"""

from __future__ import annotations

import heapq
import logging
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av

log = logging.getLogger(__name__)

MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"})
Timed = tuple[float, int, av.Packet]  # (seconds, stream order, packet): merge key for interleaving


def join_segments(segments: list[Path], target: Path, audio_source: str | None = None) -> str | None:
    """Write ``segments`` (MP4s of one encoder configuration, in order) as one MP4 at ``target``,
    with the audio of ``audio_source`` cut to the video's length. Returns a warning when the audio
    could not be kept (the video is then written silent), else None."""
    inputs = [av.open(str(p)) for p in segments]
    audio_in = None
    try:
        audio_in, warning = _open_audio(audio_source)
        try:
            _write(inputs, target, audio_in)
        except av.FFmpegError as exc:
            if audio_in is None:
                raise
            warning = f"could not keep the audio of {audio_source} ({exc}); the video is silent"
            audio_in.close()
            audio_in = None
            _write(inputs, target, None)
        return warning
    finally:
        for container in inputs:
            container.close()
        if audio_in is not None:
            audio_in.close()


def _open_audio(source: str | None) -> tuple[av.container.InputContainer | None, str | None]:
    if source is None:
        return None, None
    try:
        container = av.open(source)
    except av.FFmpegError as exc:
        return None, f"could not read the audio of {source} ({exc}); the video is silent"
    if not container.streams.audio:
        container.close()
        return None, None
    return container, None


def _write(inputs: list[av.container.InputContainer], target: Path,
           audio_in: av.container.InputContainer | None) -> None:
    with av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video_in = inputs[0].streams.video[0]
        video_out = out.add_stream_from_template(video_in)
        shifts, end_s = _placements(inputs)  # segments have the same time base
        streams: list[Iterator[Timed]] = [_video_packets(inputs, shifts, video_out)]
        if audio_in is not None:
            streams.append(_audio_packets(audio_in, out, float(end_s)))
        # Interleave by time, so players and streaming read audio and video together.
        for _, _, packet in heapq.merge(*streams, key=lambda t: (t[0], t[1])):
            out.mux(packet)


def _placements(inputs: list[av.container.InputContainer]) -> tuple[list[int], Fraction]:
    """How far each segment's timestamps move (in its time base), and the exact (rational) time the last one
    then ends. A segment starting at 0 (an even-rate source's: frame i at i / rate) follows where the one
    before ended, at its frame count and constant rate. One carrying its frames' times in the source
    (engine/video_file.SOURCE, past the first) stays where it is, unless it would start at or before the
    last frame before it (the source's clock went back: an MPEG-TS discontinuity): then it starts a frame
    period after that frame."""
    shifts: list[int] = []
    end_s, last_s = Fraction(0), Fraction(-1)
    for container in inputs:
        stream = container.streams.video[0]
        base, period = stream.time_base, 1 / Fraction(stream.average_rate)
        if stream.start_time:
            start_s = stream.start_time * base
            shift = round((last_s + period - start_s) / base) if start_s <= last_s else 0
            end_s = (stream.start_time + stream.duration + shift) * base
        else:
            shift = round(end_s / base)
            end_s += stream.frames * period
        shifts.append(shift)
        timestamps = [entry.timestamp for entry in stream.index_entries]
        last_s = (max(timestamps) + shift) * base if timestamps else end_s - period
    return shifts, end_s


def _video_packets(inputs: list[av.container.InputContainer], shifts: list[int],
                   out_stream: av.VideoStream) -> Iterator[Timed]:
    for container, shift in zip(inputs, shifts):
        stream = container.streams.video[0]
        base = stream.time_base
        for packet in container.demux(stream):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.pts += shift
            packet.dts += shift
            packet.stream = out_stream
            yield float(packet.dts * base), 0, packet


def _audio_packets(container: av.container.InputContainer, out: av.container.OutputContainer,
                   end_s: float) -> Iterator[Timed]:
    """The source's first audio track from the video's time 0 to ``end_s``: copied when MP4 can hold
    its codec, else decoded and re-encoded as AAC. The output stream is added before anything is
    muxed (here, not lazily in the generator)."""
    stream = container.streams.audio[0]
    video = container.streams.video[0] if container.streams.video else None
    origin = float(video.start_time * video.time_base) if video and video.start_time is not None else 0.0
    if stream.codec_context.name in MP4_AUDIO_CODECS:
        return _copied_audio(container, stream, out.add_stream_from_template(stream), origin, end_s)
    rate = stream.codec_context.sample_rate or 48000
    layout = stream.codec_context.layout.name if stream.codec_context.layout else "stereo"
    out_stream = out.add_stream("aac", rate=rate, layout=layout)
    return _transcoded_audio(container, stream, out_stream, origin, end_s)


def _copied_audio(container: av.container.InputContainer, stream: av.AudioStream, out_stream: av.AudioStream,
                  origin: float, end_s: float) -> Iterator[Timed]:
    base = stream.time_base
    shift = round(Fraction(origin) / base)
    for packet in container.demux(stream):
        if packet.pts is None or packet.dts is None:
            continue
        at = float(packet.pts * base) - origin
        if at < 0 or at >= end_s:
            continue
        packet.pts -= shift
        packet.dts -= shift
        packet.stream = out_stream
        yield at, 1, packet


def _transcoded_audio(container: av.container.InputContainer, stream: av.AudioStream, out_stream: av.AudioStream,
                      origin: float, end_s: float) -> Iterator[Timed]:
    rate = out_stream.codec_context.sample_rate
    resampler = av.AudioResampler(format="fltp", layout=out_stream.codec_context.layout, rate=rate)
    base = Fraction(1, rate)
    for frame in container.decode(stream):
        at = float(frame.pts * frame.time_base) - origin if frame.pts is not None else 0.0
        if at < 0 or at >= end_s:
            continue
        for converted in resampler.resample(frame):
            converted.pts = None  # the encoder numbers samples itself, from 0
            for packet in out_stream.encode(converted):
                yield float((packet.pts or 0) * base), 1, packet
    for packet in out_stream.encode(None):
        yield float((packet.pts or 0) * base), 1, packet
