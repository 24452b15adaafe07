"""Sources: files in order, live sources keeping only the newest frame, reconnecting
after a camera disappears, images and directories, the demo scene, per-device
camera pipelines, and one-line errors."""
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from devices.camera import camera_choice, v4l2_indices
from devices.profile import detect
from edgecnn.core.errors import UserError
from edgecnn.runtime.demo import DemoCapture
from edgecnn.runtime.sources import open_source
from edgecnn.runtime.sources._files import open_video_file
from edgecnn.runtime.sources._live import LiveSource
from edgecnn.runtime.sources.images import ImageFilesSource
from edgecnn.runtime.sources.video import VideoFileSource
from runtime_fixtures import VIDEO, VIDEO_FRAMES

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

FIXTURES = Path(__file__).parent / "fixtures" / "devices"


def test_video_file_gives_every_frame_in_order_even_when_the_consumer_is_slow():
    reference = cv2.VideoCapture(str(VIDEO))
    with open_source(str(VIDEO)) as source:
        assert isinstance(source, VideoFileSource) and not source.live and source.fps == pytest.approx(15, abs=0.1)
        for frame in source:
            ok, expected = reference.read()
            assert ok and np.array_equal(frame.image, expected)
            if frame.index < 5:
                time.sleep(0.02)
        assert frame.index == VIDEO_FRAMES - 1 and source.dropped == 0


def test_video_file_frames_are_timed_on_the_file_clock_not_the_reading_speed():
    """Read as fast as it decodes, a 15 fps file's frames are still 1/15 s apart (dwell
    times and clips measure the video), starting at the wall time of the first frame."""
    before = time.time()
    with open_source(str(VIDEO)) as source:
        times = []
        for frame in source:
            times.append(frame.capture_time)
            if frame.index == 3:
                time.sleep(0.3)  # a slow consumer does not stretch the file's time
    steps = np.diff(times)
    assert len(times) == VIDEO_FRAMES and np.allclose(steps, 1 / source.fps, atol=1e-6), steps
    assert before <= times[0] <= time.time()


def test_paced_camera_keeps_only_the_newest_frame_and_frame_age_stays_bounded():
    """A video read at a fixed 60 FPS stands in for a camera; the consumer takes 40 ms
    per frame (2.4x slower). Queued frames would age by ~1.5 s by the end."""
    period = 1 / 60
    source = LiveSource("paced", lambda: open_video_file(str(VIDEO)), finite=True, period=period)
    ages, indices = [], []
    for frame in source:
        ages.append(time.perf_counter() - frame.capture_clock)
        indices.append(frame.index)
        time.sleep(0.04)
    source.close()
    assert indices == sorted(indices) and indices[-1] >= VIDEO_FRAMES - 3
    assert source.dropped > 10 and source.dropped == indices[-1] + 1 - len(indices)
    assert max(ages) < 0.15, max(ages)  # at most one period plus scheduling, never a backlog
    assert np.median(ages) < 2 * period + 0.01


class FlakyCamera:
    """Gives `frames` frames, then reads fail (the camera was unplugged)."""

    def __init__(self, frames):
        self.left = frames
        self.released = False

    def read(self):
        time.sleep(0.002)  # a camera delivers frames at its own pace
        self.left -= 1
        if self.left < 0:
            return False, None
        return True, np.full((8, 8, 3), self.left % 256, np.uint8)

    def release(self):
        self.released = True


def test_camera_that_disappears_is_reopened_with_backoff_and_reported():
    opens, messages = [], []

    def opener():
        opens.append(time.perf_counter())
        if len(opens) == 2:
            raise UserError("cannot open camera")  # still unplugged at the first retry
        return FlakyCamera(5 if len(opens) == 1 else 1000)

    source = LiveSource("camera:9", opener, log=messages.append, first_backoff=0.01, max_backoff=0.05)
    frames = []
    for frame in source:
        frames.append(frame.index)
        if len(frames) == 20:
            break
        time.sleep(0.002)
    source.close()
    assert len(opens) == 3 and source.reconnects == 1 and len(frames) == 20
    assert any("reconnecting" in m for m in messages) and any("attempt 1 failed" in m for m in messages)
    assert any("reconnected" in m for m in messages)
    assert opens[2] - opens[1] >= 0.015  # the second retry waited longer than the first


def test_missing_camera_lists_the_sources_that_open():
    result = run_cli("run", "--camera", "7", "--max-frames", "1")
    assert_one_line_error(result, contains="no camera at index 7; sources that open here:")
    assert "demo" in result.stderr
    assert_one_line_error(run_cli("run", "--source", "camera:x"), contains="camera index must be a number")


def test_unknown_sources_are_one_line_errors(tmp_path):
    assert_one_line_error(run_cli("run", "--source", tmp_path / "nothing.mp4"), contains="no such file")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    assert_one_line_error(run_cli("run", "--source", broken), contains="cannot decode")
    assert_one_line_error(run_cli("run", "--source", "videotestsrc ! appsink"), contains="GStreamer")
    assert_one_line_error(run_cli("run", "--source", "demo?fps=0"), contains="fps > 0")


def test_images_directories_and_globs(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((40, 60, 3), 50 * i, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    messages = []
    directory = open_source(str(tmp_path), log=messages.append)
    assert isinstance(directory, ImageFilesSource)
    assert [f.image[0, 0, 0] for f in directory] == [0, 50, 100] and directory.skipped == 1
    assert "broken.jpg" in messages[0]
    assert len(list(open_source(str(tmp_path / "img*.png")))) == 3
    assert len(list(open_source(str(tmp_path / "img1.png")))) == 1
    with pytest.raises(UserError, match="no images match"):
        open_source(str(tmp_path / "*.bmp"))


def test_image_files_are_decoded_and_prepared_ahead_in_a_thread(tmp_path):
    import threading

    for i in range(6):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((8, 8, 3), 10 * i, np.uint8))
    readers = set()

    def prepare(image):
        readers.add(threading.current_thread().name)
        return image[None].astype(np.float32)

    with open_source(str(tmp_path)) as source:
        source.prepare = prepare  # as Model.stream sets it, before iterating
        frames = list(source)
    assert [f.index for f in frames] == list(range(6))
    assert all(f.blob is not None and f.blob[0, 0, 0, 0] == 10 * f.index for f in frames)
    assert readers == {f"decode {tmp_path}"}  # not the consumer's thread
    assert list(source) == []  # one pass
    with open_source(str(tmp_path)) as never_read:  # closing a source nobody iterated
        pass
    assert never_read._thread.ident is None


def test_demo_scene_moves_repeatably_and_is_paced():
    a, b = DemoCapture(seed=3), DemoCapture(seed=3)
    assert np.array_equal(a.scene(10), b.scene(10)) and not np.array_equal(a.scene(0), a.scene(15))
    with open_source("demo?fps=50&size=128") as source:
        assert source.live and source.fps == 50
        started, count = time.perf_counter(), 0
        for frame in source:
            assert frame.image.shape == (128, 128, 3)
            count += 1
            if count == 15:
                break
        elapsed = time.perf_counter() - started
    assert 0.2 < elapsed < 1.0, elapsed


def test_each_device_opens_its_camera_its_own_way(tmp_path):
    pi, jetson, desktop = (detect(str(FIXTURES / name)) for name in ("pi5", "jetson", "desktop"))
    assert camera_choice(0, pi, has_picamera2=True, has_gstreamer=True).api == "picamera2"
    libcamera = camera_choice(1, pi, has_picamera2=False, has_gstreamer=True)
    assert libcamera.api == "gstreamer" and libcamera.target.startswith("libcamerasrc camera-name=\"1\"")
    assert camera_choice(0, pi, has_picamera2=False, has_gstreamer=False).api == "v4l2"
    csi = camera_choice(1, jetson, width=1280, height=720, fps=60, has_picamera2=False, has_gstreamer=True)
    assert csi.api == "gstreamer" and "nvarguscamerasrc sensor-id=1" in csi.target
    assert "width=1280, height=720, framerate=60/1" in csi.target and "appsink drop=true max-buffers=1" in csi.target
    assert camera_choice(0, jetson, has_picamera2=False, has_gstreamer=False).api == "v4l2"
    usb = camera_choice(2, desktop, has_picamera2=True, has_gstreamer=True)
    assert (usb.api, usb.target) == ("v4l2", 2)
    (tmp_path / "dev").mkdir()
    for name in ("video0", "video2", "video-meta", "vhci"):
        (tmp_path / "dev" / name).touch()
    assert v4l2_indices(str(tmp_path)) == [0, 2]


def test_live_source_stops_promptly_on_close():
    source = open_source("demo?fps=5")
    thread = threading.Thread(target=lambda: list(source))
    thread.start()
    time.sleep(0.3)
    source.close()
    thread.join(timeout=3)
    assert not thread.is_alive()


def test_http_mjpeg_stream_is_a_live_source():
    """The web view's own MJPEG stream, read back over HTTP through OpenCV's FFmpeg."""
    from edgecnn.tasks.classify.result import Classes
    from edgecnn.runtime.stats import StreamStats
    from edgecnn.runtime.sinks.webview import WebView

    view, stop = WebView("127.0.0.1:0", StreamStats()), threading.Event()

    def feed():
        shade = 0
        while not stop.is_set():
            view.write(np.full((48, 64, 3), shade % 256, np.uint8), Classes(np.array([1.0]), ["a"]))
            shade += 1
            time.sleep(0.02)

    threading.Thread(target=feed, daemon=True).start()
    try:
        with open_source(view.url + "stream.mjpg") as source:
            assert source.live
            frames = []
            for frame in source:
                frames.append(frame)
                if len(frames) == 5:
                    break
        assert all(f.image.shape == (48, 64, 3) for f in frames)
        assert [f.index for f in frames] == sorted(f.index for f in frames)
    finally:
        stop.set()
        view.close()


def test_realtime_file_plays_at_its_own_frame_rate():
    with open_source(str(VIDEO), realtime=True) as source:
        assert source.live and source.fps == pytest.approx(15, abs=0.1)
        started = time.perf_counter()
        indices = []
        for frame in source:
            indices.append(frame.index)
            if len(indices) == 6:
                break
    assert time.perf_counter() - started >= 5 / 15 - 0.02 and indices == list(range(6))


def test_every_source_takes_options_in_one_grammar_and_refuses_unknown_ones(tmp_path):
    from edgecnn.runtime.sources import get_source, source_for, split_query

    assert source_for("camera:0").name == "camera" and source_for("3").name == "camera"
    assert source_for("/dev/video2?size=1280x720").name == "v4l2" and source_for("v4l2:1").name == "v4l2"
    assert source_for("rtsp://cam/stream").name == "stream" and source_for("demo?fps=5").name == "demo"
    assert source_for("a ! b ! appsink").name == "gstreamer" and source_for(str(VIDEO)).name == "video"
    assert source_for(str(tmp_path)).name == "images" and source_for(str(tmp_path / "img?.png")).name == "images"
    assert get_source("camera").split("camera:0?size=1280x720&fps=15&format=mjpg") == (
        "camera:0", {"size": (1280, 720), "fps": 15.0, "format": "MJPG"})
    # a network URL keeps the server's own query keys and gives up edgecnn's
    assert get_source("stream").split("rtsp://cam/live?channel=1&transport=tcp&subtype=0") == (
        "rtsp://cam/live?channel=1&subtype=0", {"transport": "tcp"})
    assert split_query("img?.png") == ("img?.png", [])  # a glob's wildcard is not an option
    for uri, message in (("demo?bogus=1", "source demo has no option 'bogus'; known: fps, size, seed, objects"),
                         ("camera:0?size=big", "option size: expected WIDTHxHEIGHT"),
                         ("camera:0?format=MJPEG", "four-character code"),
                         (f"{VIDEO}?loop=maybe", "option loop: expected 1 or 0"),
                         ("rtsp://cam/x?transport=quic", "expected tcp or udp"),
                         ("foo://bar", "unknown source scheme 'foo'; known: "),
                         ("demo?fps=1&fps=2", "given twice")):
        with pytest.raises(UserError, match=message):
            open_source(uri)
    assert_one_line_error(run_cli("run", "--source", "demo?bogus=1", "--max-frames", "1"),
                          contains="source demo has no option 'bogus'")


def test_files_loop_and_play_in_real_time_by_option(tmp_path):
    with open_source(f"{VIDEO}?loop=1") as looping:
        indices = [frame.index for _, frame in zip(range(VIDEO_FRAMES + 10), looping)]
    assert indices == list(range(VIDEO_FRAMES + 10))  # past the end, numbered on
    with open_source(f"{VIDEO}?fps=50&loop=1") as paced:
        assert paced.live and paced.fps == 50
        started = time.perf_counter()
        frames = [frame for _, frame in zip(range(VIDEO_FRAMES + 5), paced)]
    assert len(frames) == VIDEO_FRAMES + 5 and time.perf_counter() - started >= (VIDEO_FRAMES + 3) / 50
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((8, 8, 3), 10 * i, np.uint8))
    (tmp_path / "img3.png").write_bytes(b"not a png")
    with open_source(f"{tmp_path}?fps=100&loop=1", log=lambda m: None) as images:
        shades = [int(frame.image[0, 0, 0]) for _, frame in zip(range(7), images)]
        assert shades == [0, 10, 20, 0, 10, 20, 0] and images.skipped >= 2


def test_a_camera_is_asked_for_its_size_rate_and_pixel_format(tmp_path, monkeypatch):
    """No camera here: a stand-in capture records what the V4L2 source asks of the driver,
    and answers with the mode a real driver would round to."""
    import edgecnn.runtime.sources.v4l2 as v4l2

    asked = {}

    class Driver:
        def set(self, prop, value):
            asked[prop] = value

        def get(self, prop):
            return {cv2.CAP_PROP_FRAME_WIDTH: 1280, cv2.CAP_PROP_FRAME_HEIGHT: 720}.get(prop, 0)

    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "video4").touch()
    monkeypatch.setattr(v4l2, "open_capture", lambda target, api, name: Driver())
    messages = []
    v4l2.open_v4l2(4, {"size": (1920, 1080), "fps": 15.0, "format": "MJPG"}, messages.append, "camera:4",
                   root=str(tmp_path))
    assert asked[cv2.CAP_PROP_FRAME_WIDTH] == 1920 and asked[cv2.CAP_PROP_FRAME_HEIGHT] == 1080
    assert asked[cv2.CAP_PROP_FPS] == 15.0 and asked[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"MJPG")
    assert messages == ["camera:4: asked for 1920x1080, the driver gives 1280x720"]
    with pytest.raises(UserError, match="no camera at index 5"):
        v4l2.open_v4l2(5, {}, messages.append, "camera:5", root=str(tmp_path))
