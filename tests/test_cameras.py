"""Several cameras in one process, isolated: a camera that freezes, or goes down and
comes back, is reopened on its own while the others keep their pace; every result
names its camera; a camera offline at start is retried, not an error."""
import time

import pytest

from mjpeg_server import MjpegCamera, blank_frames
from runtime_fixtures import detector_onnx

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


def rate(times, start, end):
    inside = [t for t in times if start <= t < end]
    return len(inside) / (end - start)


@pytest.mark.slow(14)
def test_a_frozen_or_rebooted_camera_never_holds_up_the_others():
    import edgecnn

    frames = blank_frames(30, (160, 120))
    frozen, rebooted = MjpegCamera(frames, fps=20), MjpegCamera(frames, fps=20)
    model = edgecnn.load(str(detector_onnx()), log=None)
    seen = {"frozen": [], "rebooted": [], "steady": []}
    messages = []
    stream = model.stream({"frozen": frozen.url + "?timeout=1", "rebooted": rebooted.url + "?timeout=1",
                           "steady": "demo?fps=20&size=160"}, log=messages.append)
    began = time.perf_counter()
    phase = 0
    for image, result in stream:
        now = time.perf_counter() - began
        seen[result.camera].append(now)
        if phase == 0 and now > 2.0:
            frozen.frozen.set()  # stops sending, keeps the connection
            phase = 1
        elif phase == 1 and now > 5.0:
            frozen.frozen.clear()
            rebooted.stop()  # goes down
            phase = 2
        elif phase == 2 and now > 6.5:
            rebooted.wait_port_free()
            rebooted.start()  # and comes back on the same address
            phase = 3
        elif phase == 3 and now > 12.0:
            break
    stream.close()
    frozen.stop()
    rebooted.stop()
    before, during = rate(seen["steady"], 0.5, 2.0), rate(seen["steady"], 2.2, 5.0)
    assert during > 0.75 * before, (before, during)  # the others keep their pace
    assert rate(seen["frozen"], 2.5, 5.0) == 0 and any(t > 7.0 for t in seen["frozen"])  # back after the freeze
    assert any(t > 8.0 for t in seen["rebooted"])  # back after the reboot
    cameras = stream.summary["cameras"]
    assert cameras["frozen"]["reconnects"] >= 1 and cameras["rebooted"]["reconnects"] >= 1
    assert any("frozen" in m and "reconnect" in m for m in messages)


@pytest.mark.slow(6)
def test_a_camera_offline_at_start_is_retried_until_it_comes_up():
    import edgecnn

    camera = MjpegCamera(blank_frames(10, (160, 120)), fps=20)
    url = camera.url
    camera.stop()  # offline when the run starts
    model = edgecnn.load(str(detector_onnx()), log=None)
    messages, seen = [], {"late": 0, "steady": 0}
    stream = model.stream({"late": url + "?timeout=1", "steady": "demo?fps=20&size=160"}, log=messages.append)
    began = time.perf_counter()
    started = False
    for image, result in stream:
        seen[result.camera] += 1
        if not started and time.perf_counter() - began > 1.5:
            camera.wait_port_free()
            camera.start()
            started = True
        if seen["late"] >= 5:
            break
    stream.close()
    camera.stop()
    assert seen["late"] >= 5 and seen["steady"] >= 10
    assert any("retrying" in m for m in messages)
