"""Each camera's state on MQTT (PREFIX/CAMERA/state, retained) against a real broker
(Debian's mosquitto): a camera that goes down and comes back, a file that ends, a late
subscriber that reads every state at once, a broker that restarts and is told every
state again, and a one-camera run whose topics stay as they were. Needs
edgecnn[publish] (paho-mqtt), so not marked runtime."""
import threading
import time

import pytest

from mjpeg_server import MjpegCamera, blank_frames
from runtime_fixtures import VIDEO, detector_onnx
from test_publish import Subscriber, broker, needs_broker  # noqa: F401  (broker: the fixture)


def start(plan):
    from edgecnn.runtime.runner import Run

    run = Run(plan, lambda message: None)
    thread = threading.Thread(target=run.execute, args=(time.perf_counter(),), daemon=True)
    thread.start()
    return run, thread


def last_is(subscriber, topic, payload, timeout):
    """Until the newest message on `topic` is `payload`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subscriber.on(topic)[-1:] == [payload]:
            return True
        time.sleep(0.05)
    return False


@needs_broker
@pytest.mark.slow(15)
def test_camera_states_are_retained_and_follow_each_camera(broker):  # noqa: F811
    from edgecnn.runtime.plan import DEFAULT_MODEL, CameraPlan, ModelPlan, RunPlan

    door = MjpegCamera(blank_frames(20, (160, 120)), fps=20)
    subscriber = Subscriber(broker.port, "site")
    plan = RunPlan(models={DEFAULT_MODEL: ModelPlan(path=str(detector_onnx()))},
                   cameras={"door": CameraPlan(source=door.url + "?timeout=1"), "clip": CameraPlan(source=str(VIDEO))},
                   sinks={"publish": [f"mqtt://127.0.0.1:{broker.port}/site"]}, retry_at_start=True)
    run, thread = start(plan)
    try:
        assert subscriber.wait_for("site/door/state", "live", timeout=30)
        assert subscriber.wait_for("site/clip/state", "ended", timeout=30)  # the file ran out; the door goes on
        assert subscriber.on("site/clip/state")[-1] == "ended"
        door.stop()
        assert subscriber.wait_for("site/door/state", "reconnecting", timeout=10)
        door.wait_port_free()
        door.start()
        assert last_is(subscriber, "site/door/state", "live", timeout=15)
        states = subscriber.on("site/door/state")
        assert states[states.index("reconnecting"):] == ["reconnecting", "live"]  # each change once, in order
        assert all(a != b for a, b in zip(states, states[1:]))

        assert not [topic for topic, _ in subscriber.messages if topic.count("/") > 2]  # only PREFIX/CAMERA/state
        late = Subscriber(broker.port, "site")  # retained: a late subscriber reads every state at once
        try:
            assert late.wait_for("site/door/state", "live", timeout=5)
            assert late.wait_for("site/clip/state", "ended", timeout=5)
            assert late.on("site/available") == ["online"]
        finally:
            late.close()
        subscriber.close()
        broker.stop()  # a broker that restarts has lost what was retained (no persistence here)
        broker.start()
        subscriber = Subscriber(broker.port, "site")
        assert subscriber.wait_for("site/door/state", "live", timeout=20)  # sent again at the reconnection
        assert subscriber.wait_for("site/clip/state", "ended", timeout=5)
    finally:
        run.stop_requested.set()
        thread.join(timeout=30)
        door.stop()
        subscriber.close()
    assert not thread.is_alive()
    assert subscriber.on("site/available")[-1] == "offline"


@needs_broker
def test_a_one_camera_run_publishes_no_state_topics(broker):  # noqa: F811
    from edgecnn.runtime.runner import RunOptions, run

    subscriber = Subscriber(broker.port, "cam")
    try:
        run(RunOptions(source="demo?fps=30", model=str(detector_onnx()), max_frames=10,
                       sinks={"publish": [f"mqtt://127.0.0.1:{broker.port}/cam"]}), log=lambda message: None)
        assert subscriber.wait_for("cam/available", "offline")
        time.sleep(0.2)
    finally:
        subscriber.close()
    assert {topic for topic, _ in subscriber.messages} == {"cam/available", "cam/frames"}
