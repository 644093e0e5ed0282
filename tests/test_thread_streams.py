"""ThreadStreams (engine/runners.py): the CPU backends' frames in flight on threads of their own."""

import gc
import threading

import numpy as np
import pytest

from yolo_app.engine.runners import ThreadStreams, stream_layout


def test_outputs_come_in_order_with_at_most_one_frame_in_flight_per_stream():
    streams = ThreadStreams(3)
    lock, state = threading.Lock(), {"now": 0, "most": 0}
    done = [threading.Event() for _ in range(12)]
    finished = []

    def run(frame):
        i = int(frame[0])
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        # Later frames finish first: each of three frames waits for the next one to finish, which can only
        # happen with all three in flight at once on three streams; the outputs' order must still hold.
        if i % 3 != 2:
            assert done[i + 1].wait(30), f"frame {i + 1} never ran beside frame {i}"
        with lock:
            state["now"] -= 1
            finished.append(i)
        done[i].set()
        return frame * 10

    out = list(streams.map(run, (np.array([i]) for i in range(12))))
    assert [int(o[0]) for o in out] == [i * 10 for i in range(12)]
    assert finished == [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9]
    assert state["most"] == 3  # all three streams were used, never more
    streams.close()


def test_a_failing_frame_raises_in_the_caller_after_the_frames_in_flight_finish():
    streams = ThreadStreams(2)
    started, finished = [], []
    caller_has_the_error = threading.Event()

    def run(frame):
        i = int(frame[0])
        started.append(i)
        if i == 3:
            raise RuntimeError("network failed on frame 3")
        if i == 4:  # in flight as frame 3 fails: it ends when the caller has the error (which it must not
            caller_has_the_error.wait(0.5)  # have yet), or half a second later
        finished.append(i)
        return frame

    with pytest.raises(RuntimeError, match="frame 3"):
        list(streams.map(run, (np.array([i]) for i in range(10))))
    finished_when_raised = list(finished)
    caller_has_the_error.set()
    # nothing runs on into the next call: what was in flight has finished, nothing after it started
    assert sorted(finished_when_raised) == [0, 1, 2, 4]
    assert sorted(started) == [0, 1, 2, 3, 4]
    streams.close()


def test_the_stream_threads_are_set_up_once_each_and_end_when_closed_or_dropped():
    set_up = []
    for end in ("close", "drop"):
        before = set(threading.enumerate())
        streams = ThreadStreams(2, setup=lambda: set_up.append(threading.current_thread()))
        both = threading.Barrier(2)  # frames pass two at a time: each stream's thread runs one of them
        list(streams.map(lambda f, both=both: (both.wait(30), f)[1], (np.zeros(1) for _ in range(8))))
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
