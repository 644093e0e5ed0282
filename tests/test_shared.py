"""One detector shared by several cameras: the same boxes as a detector each, frames from different cameras in
one network call, fair service, failures kept to the camera that caused them, and a clean stop."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conftest import read_video, wait_for
from yolo_app.engine.inference import DetectionSettings, Detector
from yolo_app.engine.shared import SharedDetector
from yolo_app.errors import RuntimeFailure


@pytest.fixture
def shared(model):
    service = SharedDetector(Detector(model), batch=4)  # the fixture's model is torch on the CPU: batch 1 by default
    yield service
    service.stop()
    assert service.join(5.0)


def detect_at_once(clients, images):
    """Each client's detect on its own thread, all calls waiting before the service takes any."""
    found, threads = {}, []
    for i, (client, image) in enumerate(zip(clients, images)):
        threads.append(threading.Thread(target=lambda i=i, c=client, im=image: found.__setitem__(i, c.detect([im]))))
        threads[-1].start()
    return found, threads


def test_cameras_with_their_own_classes_get_what_a_detector_each_gives_in_one_network_call(shared, model, clips):
    person = read_video(clips["person"])[0]
    bottle = read_video(clips["bottle"])[0]
    cameras = [(person[30], DetectionSettings()), (bottle[10], DetectionSettings(classes=(39,))),  # bottle only
               (person[35], DetectionSettings(classes=(0,), conf=0.5))]
    clients = [shared.client(settings) for _, settings in cameras]
    found, threads = detect_at_once(clients, [image for image, _ in cameras])
    wait_for(lambda: len(shared._calls) == 3, 10, "three calls waiting")
    shared.start()
    for t in threads:
        t.join(60)
    assert shared.served_calls == 1 and shared.served_frames == 3  # one network call for the three cameras
    for i, (image, settings) in enumerate(cameras):
        alone = Detector(model, settings).detect([image])[0].detections
        together = found[i][0].detections
        assert len(alone) > 0
        np.testing.assert_allclose(together.xyxy, alone.xyxy, atol=1e-3)
        np.testing.assert_array_equal(together.class_id, alone.class_id)
        np.testing.assert_allclose(together.confidence, alone.confidence, atol=1e-4)
    assert set(found[1][0].detections.class_id) == {39} and set(found[2][0].detections.class_id) == {0}


def test_no_camera_gets_more_than_one_call_ahead_of_another(model, clips):
    image = read_video(clips["person"])[0][30]
    service = SharedDetector(Detector(model), batch=2)  # three cameras, two frames a call: someone always waits
    done = {name: 0 for name in "abc"}
    spread = []
    lock = threading.Lock()

    def camera(name):
        client = service.client(DetectionSettings())
        for _ in range(8):
            client.detect([image])
            with lock:
                done[name] += 1
                spread.append(max(done.values()) - min(done.values()))

    threads = [threading.Thread(target=camera, args=(name,)) for name in done]
    service.start()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        service.stop()
        service.join(5.0)
    assert done == {"a": 8, "b": 8, "c": 8}
    assert max(spread) <= 2  # between two calls of one batch a camera may see the other one's answer first
    assert service.served_frames == 24 and service.served_calls < 24  # calls did carry frames of two cameras


def test_a_bad_frame_fails_only_its_own_camera_and_the_service_goes_on(shared, clips):
    good = read_video(clips["person"])[0][30]
    bad = np.zeros((0, 0, 3), np.uint8)  # a broken decoder's frame
    clients = [shared.client(DetectionSettings()) for _ in range(2)]
    errors = {}

    def call(i, image):
        try:
            errors[i] = clients[i].detect([image])
        except Exception as exc:  # noqa: BLE001 - what the camera's worker would get
            errors[i] = exc

    threads = [threading.Thread(target=call, args=(0, good)), threading.Thread(target=call, args=(1, bad))]
    for t in threads:
        t.start()
    wait_for(lambda: len(shared._calls) == 2, 10, "two calls waiting")
    shared.start()
    for t in threads:
        t.join(60)
    # The bad camera gets its own frame's failure, as a detector of its own raises it (letterboxing a 0x0 frame
    # divides by its size), not the batch's nor "shared inference has stopped".
    assert type(errors[1]) is ZeroDivisionError and str(errors[1]) == "division by zero"
    assert isinstance(errors[0], list) and len(errors[0][0].detections) > 0
    assert len(clients[1].detect([good])[0].detections) > 0  # still serving


def test_after_stop_a_call_fails_at_once_instead_of_waiting(shared, clips):
    image = read_video(clips["person"])[0][30]
    client = shared.client(DetectionSettings())
    shared.start()
    assert len(client.detect([image])[0].detections) > 0
    shared.stop()
    assert shared.join(5.0)
    with pytest.raises(RuntimeFailure, match="stopped"):
        client.detect([image])
