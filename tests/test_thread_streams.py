"""ThreadStreams (engine/runners.py): the CPU backends' frames in flight on threads of their own."""

import gc
import threading
import time

import numpy as np
import pytest

from yolo_app.engine.runners import ThreadStreams, stream_layout


def test_outputs_come_in_order_with_at_most_one_frame_in_flight_per_stream():
    streams = ThreadStreams(3)
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def run(frame):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.02 * (3 - frame[0] % 3))  # later frames finish first: the order must still hold
        with lock:
            state["now"] -= 1
        return frame * 10

    out = list(streams.map(run, (np.array([i]) for i in range(12))))
    assert [int(o[0]) for o in out] == [i * 10 for i in range(12)]
    assert state["most"] == 3  # all three streams were used, never more


def test_a_failing_frame_raises_in_the_caller_after_the_frames_in_flight_finish():
    streams = ThreadStreams(2)
    finished = []

    def run(frame):
        if frame[0] == 3:
            raise RuntimeError("network failed on frame 3")
        time.sleep(0.01)
        finished.append(int(frame[0]))
        return frame

    with pytest.raises(RuntimeError, match="frame 3"):
        list(streams.map(run, (np.array([i]) for i in range(10))))
    # nothing runs on into the next call: what was in flight has finished, nothing after it started
    assert finished == sorted(finished) and max(finished) <= 4


def test_the_stream_threads_are_set_up_once_each_and_end_when_closed_or_dropped():
    set_up = []
    for end in ("close", "drop"):
        before = set(threading.enumerate())
        streams = ThreadStreams(2, setup=lambda: set_up.append(threading.current_thread()))
        list(streams.map(lambda f: (time.sleep(0.01), f)[1], (np.zeros(1) for _ in range(8))))
        workers = set(threading.enumerate()) - before
        assert len(workers) == 2 and set(set_up) == workers
        if end == "close":
            streams.close()
            assert not any(thread.is_alive() for thread in workers)
            restarted = list(streams.map(lambda f: f + 1, (np.zeros(1) for _ in range(3))))  # start again
            assert [float(o[0]) for o in restarted] == [1.0, 1.0, 1.0]
            workers |= set(threading.enumerate()) - before
            streams.close()
        del streams
        gc.collect()
        for thread in workers:
            thread.join(5)
        assert not any(thread.is_alive() for thread in workers)
        set_up.clear()


@pytest.mark.parametrize("cores,layout", [(1, (1, 1)), (2, (2, 1)), (4, (4, 1)), (16, (4, 4)), (6, (4, 1))])
def test_a_stream_per_core_up_to_four_each_with_an_equal_share(cores, layout):
    assert stream_layout(cores) == layout
