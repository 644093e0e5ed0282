import threading
import time

import pytest

from yolo_app.engine.channel import Channel, ChannelClosed
from yolo_app.engine.types import ChannelPolicy


def test_latest_policy_keeps_only_the_newest_and_counts_every_replaced_item():
    ch = Channel(1, ChannelPolicy.LATEST)
    for i in range(5):
        assert ch.put(i)
    assert ch.dropped == 4
    assert ch.get() == 4
    assert len(ch) == 0


def test_all_policy_blocks_the_producer_until_there_is_room_and_keeps_order():
    ch = Channel(2, ChannelPolicy.ALL)
    done = threading.Event()

    def produce():
        for i in range(3):
            ch.put(i)
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    assert not done.wait(0.3), "the third put must wait for room"
    assert ch.put_count == 2
    assert ch.get() == 0
    assert done.wait(2)
    assert [ch.get(), ch.get()] == [1, 2]
    assert ch.dropped == 0


def test_get_drains_what_is_queued_after_close_then_raises_closed():
    ch = Channel(4, ChannelPolicy.ALL)
    ch.put("a")
    ch.put("b")
    ch.close()
    assert not ch.put("c")
    assert ch.get_batch(8) == ["a", "b"]
    with pytest.raises(ChannelClosed):
        ch.get(timeout=1)


def test_get_times_out_when_nothing_arrives():
    with pytest.raises(TimeoutError):
        Channel(1, ChannelPolicy.ALL).get(timeout=0.05)


@pytest.mark.parametrize("side", ["getter", "putter"])
def test_cancel_wakes_a_blocked_getter_or_putter_at_once(side):
    ch = Channel(1, ChannelPolicy.ALL)
    outcome = {}
    if side == "putter":
        ch.put("fills the channel")

    def blocked():
        try:
            outcome["value"] = ch.put("x") if side == "putter" else ch.get()
        except ChannelClosed:
            outcome["value"] = "closed"

    thread = threading.Thread(target=blocked, daemon=True)
    thread.start()
    time.sleep(0.1)
    assert thread.is_alive()
    start = time.monotonic()
    ch.cancel()
    thread.join(30)  # a wake that never came would leave it blocked for good: it ends at once when it works
    assert not thread.is_alive() and time.monotonic() - start < 5
    assert outcome["value"] == (False if side == "putter" else "closed")
