"""Capture thread: frame policies, pacing, reconnects and stopping, on real footage."""

import dataclasses
import time

from yolo_app.engine.capture import CaptureState, CaptureThread
from yolo_app.engine.channel import Channel, ChannelClosed
from yolo_app.engine.readers import AvReader, open_reader
from yolo_app.engine.sources import parse_source
from yolo_app.engine.types import FramePolicy


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
    channel = Channel(2, FramePolicy.ALL)
    capture = CaptureThread(reader, channel, source_id="bottle")
    capture.start()
    frames = drain(channel, delay_s=0.01)
    assert capture.join(2)
    assert [f.index for f in frames] == list(range(30))
    assert channel.dropped == 0
    assert frames[0].pts_s == 0.0 and abs(frames[1].pts_s - 6 / 179) < 1e-3  # container PTS at 29.83 fps


def test_a_live_paced_source_with_a_slow_consumer_drops_old_frames_and_counts_them(clips):
    reader = open_reader(parse_source(str(clips["bottle"]))[0])  # 30 frames at ~30 fps, paced like a camera
    channel = Channel(1, FramePolicy.LATEST)
    capture = CaptureThread(reader, channel, source_id="live", realtime=True)
    capture.start()
    received = drain(channel, delay_s=0.1)  # consumer at ~10 fps
    assert capture.join(2)
    assert capture.captured == 30
    assert channel.dropped > 5
    assert len(received) + channel.dropped == capture.captured
    indexes = [f.index for f in received]
    assert indexes == sorted(indexes) and indexes[-1] == 29  # the newest frame always gets through


class FlakyReader:
    """A real reader that drops like a camera cable pulled after ``fail_after`` frames."""

    def __init__(self, clip, fail_after):
        self._inner = AvReader(parse_source(str(clip))[0])
        self.info = dataclasses.replace(self._inner.info, live=True)
        self.fail_after = fail_after

    def frames(self):
        for i, item in enumerate(self._inner.frames()):
            if self.fail_after is not None and i == self.fail_after:
                raise ConnectionError("cable pulled")
            yield item

    def close(self):
        self._inner.close()


def test_a_live_source_that_drops_is_reopened_with_backoff_and_frames_continue(clips):
    reopened = []

    def reopen():
        reopened.append(time.monotonic())
        if len(reopened) == 1:
            raise ConnectionError("still down")  # first retry fails: back-off doubles
        return FlakyReader(clips["person"], fail_after=None)

    channel = Channel(64, FramePolicy.ALL)
    capture = CaptureThread(FlakyReader(clips["person"], fail_after=5), channel, source_id="cam",
                            reopen=reopen, backoff_s=(0.05, 1.0))
    capture.start()
    frames = drain(channel)
    assert capture.join(2)
    assert capture.reconnects == 1 and len(reopened) == 2
    assert reopened[1] - reopened[0] >= 0.09  # waited twice as long after the failed retry
    assert len(frames) == 5 + 40
    assert [f.index for f in frames] == list(range(45))
    assert all(b.pts_s >= a.pts_s for a, b in zip(frames, frames[1:]))  # live: monotonic clock


def test_stop_ends_a_capture_blocked_on_a_full_queue_within_two_seconds(clips):
    reader = open_reader(parse_source(str(clips["person"]))[0])
    channel = Channel(1, FramePolicy.ALL)
    capture = CaptureThread(reader, channel, source_id="person")
    capture.start()
    time.sleep(0.3)  # nobody consumes: capture now waits in put()
    start = time.monotonic()
    capture.stop()
    channel.cancel()
    assert capture.join(2)
    assert time.monotonic() - start < 2
    assert capture.state is CaptureState.ENDED and capture.error is None


def test_max_frames_ends_capture_early_and_cleanly(clips):
    reader = open_reader(parse_source(str(clips["person"]))[0])
    channel = Channel(8, FramePolicy.ALL)
    capture = CaptureThread(reader, channel, source_id="person", max_frames=7)
    capture.start()
    assert len(drain(channel)) == 7
    assert capture.join(2)
