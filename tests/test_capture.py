"""Capture thread: frame policies, pacing and stopping, on real footage (reconnects: test_supervisor.py)."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from yolo_app.engine.capture import CaptureThread, Playback
from yolo_app.engine.channel import Channel, ChannelClosed
from yolo_app.engine.readers import open_reader
from yolo_app.engine.sources import parse_source
from yolo_app.engine.types import ChannelPolicy


def drain(channel, delay_s=0.0):
    frames = []
    while True:
        try:
            frames.append(channel.get(timeout=5))
        except ChannelClosed:
            return frames
        time.sleep(delay_s)


def test_a_file_under_the_all_policy_loses_nothing_even_with_a_slow_consumer(clips):
    reader = open_reader(parse_source(str(clips["bottle"]))[0])
    channel = Channel(2, ChannelPolicy.ALL)
    capture = CaptureThread(reader, [channel], source_id="bottle")
    capture.start()
    frames = drain(channel, delay_s=0.01)
    assert capture.join(2)
    assert [f.index for f in frames] == list(range(30))
    assert channel.dropped == 0
    assert frames[0].pts_s == 0.0 and abs(frames[1].pts_s - 6 / 179) < 1e-3  # container PTS at 29.83 fps


def test_a_live_paced_source_with_a_slow_consumer_drops_old_frames_and_counts_them(clips):
    reader = open_reader(parse_source(str(clips["bottle"]))[0])  # 30 frames at ~30 fps, paced like a camera
    channel = Channel(1, ChannelPolicy.LATEST)
    capture = CaptureThread(reader, [channel], source_id="live", playback=Playback(realtime=True))
    capture.start()
    received = drain(channel, delay_s=0.1)  # consumer at ~10 fps
    assert capture.join(2)
    assert capture.captured == 30
    assert channel.dropped > 5
    assert len(received) + channel.dropped == capture.captured
    indexes = [f.index for f in received]
    assert indexes == sorted(indexes) and indexes[-1] == 29  # the newest frame always gets through


def test_stop_ends_a_capture_blocked_on_a_full_queue_within_two_seconds(clips):
    reader = open_reader(parse_source(str(clips["person"]))[0])
    channel = Channel(1, ChannelPolicy.ALL)
    capture = CaptureThread(reader, [channel], source_id="person")
    capture.start()
    time.sleep(0.3)  # nobody consumes: capture now waits in put()
    start = time.monotonic()
    capture.stop()
    channel.cancel()
    assert capture.join(2)
    assert time.monotonic() - start < 2
    assert capture.error is None


def test_max_frames_ends_capture_early_and_cleanly(clips):
    reader = open_reader(parse_source(str(clips["person"]))[0])
    channel = Channel(8, ChannelPolicy.ALL)
    capture = CaptureThread(reader, [channel], source_id="person", max_frames=7)
    capture.start()
    assert len(drain(channel)) == 7
    assert capture.join(2)


def start_capture(clip, capacity=64, **kwargs):
    reader = open_reader(parse_source(str(clip))[0])
    channel = Channel(capacity, ChannelPolicy.ALL)
    capture = CaptureThread(reader, [channel], source_id="clip", **kwargs)
    capture.start()
    return capture, channel


def test_pause_holds_frames_back_and_step_releases_exactly_one(clips):
    playback = Playback()
    playback.pause()
    capture, channel = start_capture(clips["person"], playback=playback)
    time.sleep(0.3)
    assert len(channel) == 0
    playback.step()
    assert channel.get(timeout=2).index == 0
    time.sleep(0.2)
    assert len(channel) == 0
    playback.step(2)
    assert [channel.get(timeout=2).index, channel.get(timeout=2).index] == [1, 2]
    playback.resume()
    assert [f.index for f in drain(channel)] == list(range(3, 40))
    assert capture.join(2)


def test_seek_jumps_to_the_frame_at_that_time_even_while_paused(clips):
    playback = Playback()
    playback.pause()
    capture, channel = start_capture(clips["person"], playback=playback)
    playback.seek(2.5)  # 10 fps: frame 25
    frame = channel.get(timeout=5)
    assert frame.index == 25 and abs(frame.pts_s - 2.5) < 1e-6
    playback.seek(0.3)  # backwards
    assert channel.get(timeout=5).index == 3
    playback.resume()
    assert [f.index for f in drain(channel)] == list(range(4, 40))
    assert capture.join(2)


class SlowAtTheEnd:
    """A file reader that takes its time to find the end of the file (as a network share or a long GOP
    does): its last read waits for ``release``."""

    def __init__(self, reader):
        self.reader, self.at_end, self.release = reader, threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.reader, name)

    def frames(self):
        yield from self.reader.frames()
        self.at_end.set()
        self.release.wait(5)


def test_a_seek_while_capture_finds_the_end_of_the_file_plays_on_from_there(clips):
    reader = SlowAtTheEnd(open_reader(parse_source(str(clips["person"]))[0]))
    playback = Playback()
    channel = Channel(64, ChannelPolicy.ALL)
    capture = CaptureThread(reader, [channel], source_id="person", playback=playback)
    capture.start()
    assert reader.at_end.wait(5)
    assert playback.seek(1.5)  # the user drags the slider back as the last frame shows
    reader.release.set()
    indexes = [f.index for f in drain(channel)]
    assert capture.join(2)
    assert indexes == list(range(40)) + list(range(15, 40))
    assert not playback.seek(1.0)  # capture has ended: the caller must open the source again


def test_loop_plays_a_file_again_from_the_start(clips):
    playback = Playback(loop=True)
    capture, channel = start_capture(clips["bottle"], playback=playback, max_frames=75)
    indexes = [f.index for f in drain(channel)]
    assert capture.join(2)
    assert indexes == list(range(30)) * 2 + list(range(15))


def test_real_time_pacing_follows_the_container_clock(clips):
    capture, channel = start_capture(clips["bottle"], playback=Playback(realtime=True), max_frames=15)
    start = time.monotonic()
    frames = drain(channel)
    elapsed = time.monotonic() - start
    assert capture.join(2) and len(frames) == 15
    assert elapsed >= 14 / (179 / 6) * 0.9  # 15 frames at 29.8 fps take about 0.47 s


def test_one_capture_fans_out_the_same_frames_to_every_branch(clips):
    reader = open_reader(parse_source(str(clips["bottle"]))[0])
    channels = [Channel(64, ChannelPolicy.ALL), Channel(64, ChannelPolicy.ALL)]
    capture = CaptureThread(reader, channels, source_id="clip")
    capture.start()
    first, second = drain(channels[0]), drain(channels[1])
    assert capture.join(2)
    assert [f.index for f in first] == [f.index for f in second] == list(range(30))
    assert all(a is b for a, b in zip(first, second))  # the same Frame objects: captured once


THREADS_STARTED_WHILE_DECODING = """
import os
import sys
from yolo_app.engine.readers import open_reader
from yolo_app.engine.sources import parse_source

def threads():  # this process's live threads, by id: nothing else on the machine shows here
    return set(os.listdir("/proc/self/task"))

frames = open_reader(parse_source(sys.argv[1])[0]).frames()
next(frames)  # the decoder and the colour converter are set up
before = threads()
seen = set(before)
decoded = 0
for _ in frames:  # per-frame swscale workers are still alive after their frame (PyAV 18: two a frame)
    decoded += 1
    seen |= threads()
print(decoded, len(seen - before))
"""


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts threads through Linux's /proc")
def test_decoding_a_video_starts_no_thread_per_frame(clips):
    """PyAV 17+ converts colours on swscale workers it starts and ends for every frame unless told one
    thread: 1.6 instead of 0.3 ms a frame, and a core taken from the network meanwhile. Counted in a process
    of its own, where only the decoding runs."""
    done = subprocess.run([sys.executable, "-c", THREADS_STARTED_WHILE_DECODING, str(clips["bottle"])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    decoded, started = map(int, done.stdout.split())
    assert decoded == 29
    assert started < 5, f"{started} threads started while decoding {decoded} frames"  # a worker a frame: 29+
