"""Sinks of `edgecnn run`: JSON lines, the annotated video, callbacks, the window check,
and the web view's HTTP rules (the page itself: test_webview_browser.py)."""
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from edgecnn.core.errors import UserError
from edgecnn.runtime.runner import RunOptions, run
from edgecnn.runtime.sinks import Sink
from edgecnn.runtime.sinks.video import VideoSink
from edgecnn.runtime.stats import StreamStats
from edgecnn.runtime.sinks.webview import WebView
from runtime_fixtures import VIDEO, VIDEO_FRAMES

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed



def test_json_lines_and_annotated_video_for_every_frame(tmp_path):
    out, video = tmp_path / "results.jsonl", tmp_path / "annotated.avi"
    result = run_cli("run", "--source", VIDEO, "--json", out, "--save", video, check=True)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(VIDEO_FRAMES))
    for record in records:
        assert record["task"] == "detect" and record["frame_age_ms"] >= record["inference_ms"] > 0
        for d in record["detections"]:
            assert d["label"] in ("circle", "rectangle", "triangle") and 0.25 <= d["score"] <= 1
            x1, y1, x2, y2 = d["box"]
            assert 0 <= x1 <= x2 <= 320 and 0 <= y1 <= y2 <= 240
    assert [r["capture_time"] for r in records] == sorted(r["capture_time"] for r in records)
    assert f"summary: {VIDEO_FRAMES} frames" in result.stderr and "p99" in result.stderr
    written, source = cv2.VideoCapture(str(video)), cv2.VideoCapture(str(VIDEO))
    frames = changed = 0
    while True:
        ok, frame = written.read()
        if not ok:
            break
        _, original = source.read()
        assert frame.shape == (240, 320, 3)
        changed += bool(np.abs(frame.astype(int) - original).max() > 100)  # boxes drawn
        frames += 1
    assert frames == VIDEO_FRAMES
    assert changed == sum(bool(r["detections"]) for r in records)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.avi", "results.jsonl"]  # no partial file


def test_stdout_carries_only_json_lines_by_default():
    result = run_cli("run", "--source", "demo?fps=100", "--max-frames", "4", check=True)
    assert [json.loads(line)["frame"] >= 0 for line in result.stdout.splitlines()] == [True] * 4
    assert "summary: 4 frames" in result.stderr


def test_video_of_an_interrupted_run_is_not_left_behind(tmp_path):
    sink = VideoSink(str(tmp_path / "out.mp4"), fps=10)
    from edgecnn.tasks.classify.result import Classes

    for _ in range(3):
        sink.write(np.zeros((32, 48, 3), np.uint8), Classes(np.array([0.2, 0.8]), ["a", "b"]))
    assert list(tmp_path.iterdir()) != []
    sink.close(completed=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="--save"):
        VideoSink(str(tmp_path / "out.gif"))


def written_fourcc(path):
    capture = cv2.VideoCapture(str(path))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    frames = 0
    while capture.grab():
        frames += 1
    return fourcc, frames


def test_saved_mp4_is_h264_with_pyav_and_webm_is_vp8(tmp_path, monkeypatch):
    """Browsers play H.264 .mp4 and VP8 .webm; OpenCV's own .mp4 (mp4v) they refuse, so
    without PyAV the run says so in one line at its start."""
    import importlib.util
    import sys

    from edgecnn.tasks.classify.result import Classes

    result = Classes(np.array([0.2, 0.8]), ["a", "b"])

    def save(name):
        lines = []
        sink = VideoSink(str(tmp_path / name), fps=10, log=lines.append)
        for index in range(12):
            sink.write(np.full((48, 64, 3), index * 20, np.uint8), result)
        sink.close()
        return written_fourcc(tmp_path / name), lines

    assert save("out.mp4")[0] == ("h264" if importlib.util.find_spec("av") is not None else "FMP4", 12)
    assert save("out.webm") == (("VP80", 12), [])
    monkeypatch.setitem(sys.modules, "av", None)  # as where PyAV is not installed
    (fourcc, frames), lines = save("plain.mp4")
    assert (fourcc, frames) == ("FMP4", 12) and len(lines) == 1
    assert "browsers do not play" in lines[0] and "pip install 'edgecnn[video]'" in lines[0] and ".webm" in lines[0]


def test_callback_receives_every_result():
    seen = []
    summary = run(RunOptions(source=str(VIDEO), max_frames=10, callbacks=[lambda image, r: seen.append(r)]),
                  log=lambda message: None)
    assert [r.frame_index for r in seen] == list(range(10)) and summary["frames"] == 10
    assert summary["first_result_ms"] > 0 and summary["age_p99_ms"] >= summary["age_p50_ms"]


def test_window_needs_a_display():
    result = run_cli("run", "--source", "demo", "--show", "--max-frames", "1",
                     env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert_one_line_error(result, contains="--show needs a display")


@pytest.mark.skipif(not Path("/usr/bin/Xvfb").exists(), reason="needs Xvfb for a virtual display "
                    "(apt-get install -y xvfb)")
def test_window_opens_on_a_virtual_display():
    import subprocess

    display = next(n for n in range(90, 140) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    server = subprocess.Popen(["/usr/bin/Xvfb", f":{display}", "-screen", "0", "640x480x24"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{display}").exists():
                break
            time.sleep(0.1)
        result = run_cli("run", "--source", "demo?fps=60", "--show", "--max-frames", "5",
                         env={"DISPLAY": f":{display}", "WAYLAND_DISPLAY": ""}, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "summary: 5 frames" in result.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read(2000)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_web_view_rules_token_paths_and_bounded_viewers():
    with pytest.raises(UserError, match="--token"):
        WebView("0.0.0.0:0", StreamStats())
    view = WebView("127.0.0.1:0", StreamStats(), token="s3cret-token-4hj2k9", max_clients=1)
    try:
        base = view.url.split("?")[0]
        assert fetch(base)[0] == 401 and fetch(base + "?token=wrong")[0] == 401
        status, headers, body = fetch(base + "?token=s3cret-token-4hj2k9")
        assert status == 200 and b"/stream.mjpg?token=s3cret-token-4hj2k9" in body
        assert fetch(base + "stats.json", {"Authorization": "Bearer s3cret-token-4hj2k9"})[0] == 200
        for path in ("etc/passwd", "../x", "stream.mjpg/extra", "favicon.ico"):
            assert fetch(base + path + "?token=s3cret-token-4hj2k9")[0] == 404
        from edgecnn.tasks.classify.result import Classes

        view.write(np.zeros((32, 32, 3), np.uint8), Classes(np.array([1.0]), ["a"]))
        first = urllib.request.urlopen(base + "stream.mjpg?token=s3cret-token-4hj2k9", timeout=5)
        assert first.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        assert first.read(9) == b"--frame\r\n"
        assert fetch(base + "stream.mjpg?token=s3cret-token-4hj2k9")[0] == 503  # the one viewer slot is taken
        first.close()
    finally:
        view.close()


class SlowSink(Sink):
    """Takes `seconds` over each record, and keeps them."""

    def __init__(self, seconds: float):
        self.seconds, self.frames = seconds, []

    def write(self, image, result):
        time.sleep(self.seconds)
        self.frames.append(result)


def test_a_slow_sink_drops_its_oldest_records_and_never_holds_up_inference():
    from edgecnn.runtime.sinks import QueuedSink

    slow, stats = SlowSink(0.2), StreamStats()
    queued = QueuedSink(slow, "slow", capacity=3, stats=stats)
    began = time.perf_counter()
    for index in range(20):
        queued.write(None, index)
    assert time.perf_counter() - began < 0.1  # twenty writes, none waited for the 0.2 s sink
    queued.close()
    assert slow.frames[-3:] == [17, 18, 19]  # the newest are kept, the oldest dropped
    assert queued.dropped == stats.sink_dropped["slow"] == 20 - len(slow.frames) > 0

    seen = []
    summary = run(RunOptions(source=str(VIDEO), callbacks=[lambda image, r: (time.sleep(0.2), seen.append(r))]),
                  log=lambda message: None)
    assert summary["frames"] == VIDEO_FRAMES and summary["fps"] > 10  # a 0.2 s callback would cap it at 5
    assert summary["sink_dropped"]["callback"] == VIDEO_FRAMES - len(seen) > 0
    assert seen[-1].frame_index == VIDEO_FRAMES - 1


def test_a_records_sink_counts_the_records_it_dropped_events_included():
    """A frame that carries track events is several records on the wire: a publisher or
    JSON lines queue that drops it counts each of them, so sent + dropped adds up."""
    from edgecnn.runtime.sinks import QueuedSink
    from edgecnn.runtime.publishers import Publisher

    class SlowPublisher(Publisher):
        name = "slow"

        def __init__(self):
            self.sent = []

        def send(self, record, payload):
            time.sleep(0.05)
            self.sent.append(record)

        def close(self, completed=True):
            pass

    import edgecnn

    model = edgecnn.load(log=None)
    results = [result for _, result in model.stream("demo?fps=1000", track=True, max_frames=40)]
    assert any(result.events for result in results)
    expected = sum(SlowPublisher().records_in(result) for result in results)
    assert expected > len(results)
    slow, stats = SlowPublisher(), StreamStats()
    queued = QueuedSink(slow, "slow", capacity=2, stats=stats)
    for result in results:
        queued.write(None, result)
    queued.close()
    assert queued.dropped > 0 and len(slow.sent) + stats.sink_dropped["slow"] == expected


def test_a_file_run_keeps_every_record_of_a_slow_file_sink():
    """From a source that is not live, the sinks that record the run (JSON lines, video)
    wait for room instead of dropping: a file run's records are complete."""
    from edgecnn.runtime.sinks import QueuedSink, get_sink

    slow, stats = SlowSink(0.01), StreamStats()
    queued = QueuedSink(slow, "slow", capacity=3, stats=stats, wait_when_full=True)
    for index in range(20):
        queued.write(None, index)
    queued.close()
    assert slow.frames == list(range(20)) and queued.dropped == 0 and not stats.sink_dropped
    assert get_sink("jsonl").records_the_run and get_sink("video").records_the_run
    assert not get_sink("publish").records_the_run and not get_sink("webview").records_the_run


def test_the_queue_of_a_sink_that_reads_only_results_keeps_no_frames():
    """A publisher's queue fills while its broker is down: it must hold records, not
    64 camera frames."""
    from edgecnn.runtime.publishers import Publisher
    from edgecnn.runtime.sinks import QueuedSink
    from edgecnn.runtime.sinks.jsonl import JsonLinesSink

    assert not Publisher.uses_image and not JsonLinesSink.uses_image and VideoSink.uses_image
    for uses_image in (False, True):
        slow = SlowSink(0.05)
        slow.uses_image, images = uses_image, []
        slow.write = lambda image, result, write=slow.write: (images.append(image), write(image, result))
        queued = QueuedSink(slow, "slow", capacity=4)
        for index in range(6):
            queued.write(np.zeros((8, 8, 3), np.uint8), index)
        assert all((image is None) != uses_image for image, _ in list(queued._queue))
        queued.close()
        assert images and all((image is None) != uses_image for image in images)


def test_an_error_on_a_sink_thread_ends_the_run_with_its_message():
    from edgecnn.runtime.sinks import QueuedSink, Sink

    class Broken(Sink):
        closed_as = None

        def write(self, image, result):
            raise UserError("cannot write there")

        def close(self, completed=True):
            Broken.closed_as = completed

    queued = QueuedSink(Broken(), "broken")
    queued.write(None, 0)
    queued.drain(5)
    with pytest.raises(UserError, match="cannot write there"):
        queued.write(None, 1)
    queued.close()  # raised once already
    assert Broken.closed_as is False
