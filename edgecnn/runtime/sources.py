"""Frame sources named by URI, all yielding Frame records:

    camera:N | N        camera N, opened the way devices.camera chooses for this board
    /dev/videoN         that V4L2 device
    rtsp:// http(s)://  network streams (OpenCV's FFmpeg)
    "... ! ..."         a GStreamer pipeline string ending in appsink
    demo[?fps=30]       a built-in moving synthetic scene (the shapes the bundled detector knows)
    file.mp4 / .avi     a video file
    img.png, DIR, *.jpg an image, every image in a directory, a glob

Live sources (cameras, streams, pipelines, demo, and files with realtime=True) run a
capture thread that keeps only the newest frame: when inference is slower than the
source, old frames are dropped (and counted) instead of queueing up, so the age of
each answer stays bounded. Files (videos and images) otherwise give every frame in
order, decoded a few frames ahead in a thread so decoding overlaps inference. A live
source that fails mid-run is reopened with backoff (each attempt reported), never
crashing the run.
"""
from __future__ import annotations

import glob
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional
from urllib.parse import parse_qs

import cv2
import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.core.files import is_image_file
from edgecnn.runtime.native_stderr import native_stderr

URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
_END = object()


@dataclass
class Frame:
    image: np.ndarray  # BGR uint8 (or grey)
    index: int  # position in the source (gaps: frames dropped by a live source)
    capture_time: float  # wall clock, seconds since the epoch
    capture_clock: float  # time.perf_counter() at capture, for ages
    blob: Optional[np.ndarray] = None  # model input, when the source's thread made it ahead


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Source:
    """Iterate to get frames; `close()` (or a with-block) stops capture threads."""

    name: str = ""
    live: bool = False
    fps: float = 0.0  # nominal frame rate (0: unknown)
    dropped: int = 0  # frames captured but replaced by a newer one before use
    reconnects: int = 0
    # Files: the model's preprocessing, run in the decode thread so it overlaps inference.
    prepare: Optional[Callable[[np.ndarray], np.ndarray]] = None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------ live: newest frame only

class LiveSource(Source):
    """A capture thread reading from `opener()` (an object with read() -> (ok, image)
    and release(), like cv2.VideoCapture), keeping only the newest frame.

    finite: the end of the stream ends the source (paced files); otherwise a failed
    read means the device went away and it is reopened with exponential backoff.
    period: pace reads to this many seconds per frame (files and demo; 0 for real
    devices, which pace themselves).
    """

    def __init__(self, name: str, opener: Callable[[], object], *, finite: bool = False, period: float = 0.0,
                 fps: float = 0.0, log: Callable[[str], None] = stderr_log, max_backoff: float = 5.0,
                 first_backoff: float = 0.25) -> None:
        self.name, self.live, self.fps = name, True, fps or (1.0 / period if period else 0.0)
        self._opener, self._finite, self._period, self._log = opener, finite, period, log
        self._first_backoff, self._max_backoff = first_backoff, max_backoff
        self._condition = threading.Condition()
        self._latest: Optional[Frame] = None
        self._ended = False
        self._stop = threading.Event()
        self.status = "running"
        self._capture = opener()  # the first open is synchronous: a bad source fails here
        if not self.fps and hasattr(self._capture, "get"):  # a camera's own rate, for --save
            reported = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
            self.fps = reported if 1 <= reported <= 240 else 0.0  # streams report 90000 and the like
        self._thread = threading.Thread(target=self._run, name=f"capture {name}", daemon=True)
        self._thread.start()

    def _publish(self, frame: Optional[Frame]) -> None:
        with self._condition:
            if frame is None:
                self._ended = True
            else:
                if self._latest is not None:
                    self.dropped += 1
                self._latest = frame
            self._condition.notify_all()

    def _run(self) -> None:
        index, deadline, attempt = 0, time.perf_counter(), 0
        try:
            while not self._stop.is_set():
                if self._capture is None:
                    self._capture = self._reopen(attempt)
                    attempt = 0 if self._capture is not None else attempt + 1
                    continue
                if self._period:
                    deadline += self._period
                    delay = deadline - time.perf_counter()
                    if delay > 0:
                        self._stop.wait(delay)
                    else:
                        deadline = time.perf_counter()  # fell behind: do not burst to catch up
                try:
                    ok, image = self._capture.read()
                except Exception as exc:  # a driver error is a lost device too, never a dead thread
                    self._log(f"{self.name}: read failed: {exc}")
                    ok, image = False, None
                if not ok or image is None:
                    if self._finite:
                        break
                    self._log(f"{self.name}: no frame (device gone?); reconnecting")
                    self.status = "reconnecting"
                    self._release()
                    continue
                self._publish(Frame(image, index, time.time(), time.perf_counter()))
                index += 1
        finally:
            self._release()
            self._publish(None)

    def _reopen(self, attempt: int):
        delay = min(self._first_backoff * 2 ** attempt, self._max_backoff)
        if self._stop.wait(delay):
            return None
        try:
            capture = self._opener()
        except Exception as exc:  # any failure to reopen is one more attempt, never a dead thread
            self._log(f"{self.name}: reconnect attempt {attempt + 1} failed ({exc}); next in "
                      f"{min(delay * 2, self._max_backoff):.2f} s")
            return None
        self.reconnects += 1
        self.status = "running"
        self._log(f"{self.name}: reconnected (reconnect {self.reconnects})")
        return capture

    def _release(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._condition:
                while self._latest is None and not self._ended:
                    self._condition.wait(0.5)
                frame, self._latest = self._latest, None
                if frame is None:
                    return
            yield frame

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


# ------------------------------------------------------------------ files: every frame in order

class ReadAheadSource(Source):
    """Every frame of a file source in order; from the first iteration on, a reader
    thread decodes (and, given `prepare`, preprocesses) ahead into a small queue so
    that work overlaps inference. Subclasses say how to read: `_images()` yields
    (index, image); `_release()` frees what a source never iterated holds."""

    def __init__(self, name: str, ahead: int = 4) -> None:
        self.name = name
        self._queue: "queue.Queue" = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, name=f"decode {name}", daemon=True)

    def _images(self) -> Iterator[tuple]:
        raise NotImplementedError

    def _release(self) -> None:
        pass

    def _run(self) -> None:
        try:
            for index, image in self._images():
                if self._stop.is_set():
                    break
                prepare = self.prepare
                self._put(Frame(image, index, time.time(), time.perf_counter(),
                                prepare(image) if prepare is not None else None))
        finally:
            self._put(_END)

    def _put(self, item) -> None:
        """Wait for room in the queue, but give up as soon as the reader stops."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Frame]:
        if self._thread.ident is None:
            self._thread.start()
        while not self._finished:
            item = self._queue.get()
            if item is _END:
                self._finished = True  # one pass: iterating again yields nothing instead of waiting forever
                return
            # The age of a file frame counts from when it is taken for processing.
            item.capture_time, item.capture_clock = time.time(), time.perf_counter()
            yield item

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is None:
            self._release()
        else:
            self._thread.join(timeout=5)


class VideoFileSource(ReadAheadSource):
    """Every frame of a video file in order, decoded ahead."""

    def __init__(self, path: str, ahead: int = 4) -> None:
        self.path = path
        self._capture = open_video_file(path, decoder_threads=1)
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        super().__init__(path, ahead)

    def _images(self) -> Iterator[tuple]:
        index = 0
        try:
            while True:
                ok, image = self._capture.read()
                if not ok:
                    return
                yield index, image
                index += 1
        finally:
            self._capture.release()

    def _release(self) -> None:
        self._capture.release()


class ImageFilesSource(ReadAheadSource):
    """Images one after another (a file, a directory's images, or a glob), decoded ahead;
    an image that does not decode is reported and skipped."""

    def __init__(self, name: str, paths: List[str], log: Callable[[str], None] = stderr_log, ahead: int = 4) -> None:
        self.paths, self._log = paths, log
        self.skipped = 0
        super().__init__(name, ahead)

    def _images(self) -> Iterator[tuple]:
        for index, path in enumerate(self.paths):
            image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if image is None:
                self.skipped += 1
                self._log(f"{path}: not a readable image; skipped")
                continue
            if image.dtype != np.uint8:  # 16-bit PNG/TIFF: scale to 8 bits
                image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
            yield index, image


# ------------------------------------------------------------------ openers

def open_video_file(path: str, decoder_threads: int = 0) -> cv2.VideoCapture:
    """decoder_threads: FFmpeg's own threads (0: its default, one per core); the
    decode-ahead reader asks for 1, since its own thread already runs beside inference."""
    with native_stderr() as captured:
        capture = cv2.VideoCapture(path, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, decoder_threads]) \
            if decoder_threads else cv2.VideoCapture(path)
        ok = capture.isOpened()
        if ok:
            ok, _ = capture.read()
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        if not ok:
            captured.forward = False  # FFmpeg's complaint; the error below says it in one line
    if not ok:
        capture.release()
        raise UserError(f"{path}: cannot decode this video file")
    return capture


def open_capture(target, api: int, name: str) -> cv2.VideoCapture:
    with native_stderr() as captured:
        capture = cv2.VideoCapture(target, api)
        captured.forward = capture.isOpened()
    if not capture.isOpened():
        capture.release()
        raise UserError(f"cannot open {name}")
    return capture


class Picamera2Capture:
    """picamera2 behind the read()/release() interface the capture thread uses."""

    def __init__(self, index: int, width: int = 640, height: int = 480) -> None:
        from picamera2 import Picamera2

        try:
            self.camera = Picamera2(index)
            # picamera2's "RGB888" is B, G, R in memory: OpenCV's order.
            self.camera.configure(self.camera.create_video_configuration(
                main={"size": (width, height), "format": "RGB888"}, buffer_count=2))
            self.camera.start()
        except (IndexError, RuntimeError) as exc:
            raise UserError(f"cannot open Pi camera {index}: {exc}") from None

    def read(self):
        try:
            return True, self.camera.capture_array()
        except RuntimeError:
            return False, None

    def release(self) -> None:
        self.camera.close()


def camera_indices_that_open(root: str = "/") -> List[int]:
    """V4L2 cameras that actually open here (checked only for /dev/videoN nodes that exist,
    so probing never makes OpenCV print warnings)."""
    from devices.camera import v4l2_indices

    working = []
    for index in v4l2_indices(root):
        capture = cv2.VideoCapture(index, cv2.CAP_V4L2)
        if capture.isOpened():
            working.append(index)
        capture.release()
    return working


def camera_opener(index: int, log: Callable[[str], None], root: str = "/") -> Callable[[], object]:
    """An opener for camera N using the path devices.camera chooses for this board."""
    from devices.camera import camera_choice
    from devices.profile import detect

    choice = camera_choice(index, detect(root))

    def opener():
        if choice.api == "picamera2":
            return Picamera2Capture(int(choice.target))
        if choice.api == "gstreamer":
            return open_capture(choice.target, cv2.CAP_GSTREAMER, choice.description)
        if not os.path.exists(os.path.join(root, "dev", f"video{index}")):
            raise UserError(f"no camera at index {index}")
        return open_capture(index, cv2.CAP_V4L2, choice.description)

    return opener


def missing_camera_error(index: int, root: str = "/") -> UserError:
    working = [f"camera:{i}" for i in camera_indices_that_open(root) if i != index]
    return UserError(f"no camera at index {index}; sources that open here: {', '.join(working + ['demo'])} "
                     f"(video files, images, rtsp:// URLs and GStreamer pipelines also work)")


# ------------------------------------------------------------------ URI -> source

def open_source(uri, *, realtime: bool = False, log: Callable[[str], None] = stderr_log) -> Source:
    """The source a URI names (see the module docstring)."""
    text = str(uri).strip()
    if text.isdigit() or text.startswith("camera:"):
        index_text = text.split(":", 1)[-1]
        if not index_text.isdigit():
            raise UserError(f"camera index must be a number, got {text!r}")
        index = int(index_text)
        opener = camera_opener(index, log)
        try:
            return LiveSource(f"camera:{index}", opener, log=log)
        except UserError:
            raise missing_camera_error(index) from None
    if text == "demo" or text.startswith("demo?"):
        from edgecnn.runtime.demo import DemoCapture

        options = parse_qs(text.partition("?")[2])
        try:
            fps = float(options.get("fps", ["30"])[0])
            size = int(options.get("size", ["384"])[0])
            seed = int(options.get("seed", ["0"])[0])
        except ValueError:
            raise UserError(f"demo options are fps=N, size=N, seed=N; got {text!r}") from None
        if fps <= 0 or size < 32:
            raise UserError(f"demo needs fps > 0 and size >= 32, got {text!r}")
        return LiveSource("demo", lambda: DemoCapture(size, seed, fps), period=1.0 / fps, log=log)
    if text.startswith(URL_SCHEMES):
        return LiveSource(text, lambda: open_capture(text, cv2.CAP_FFMPEG, text), log=log)
    if " ! " in text:
        from devices.camera import opencv_has_gstreamer

        if not opencv_has_gstreamer():
            raise UserError("this OpenCV build has no GStreamer support, so pipeline strings cannot be opened")
        return LiveSource("gstreamer", lambda: open_capture(text, cv2.CAP_GSTREAMER, "the GStreamer pipeline"),
                          log=log)
    if text.startswith("/dev/video") and text[10:].isdigit():
        index = int(text[10:])
        return LiveSource(text, lambda: open_capture(index, cv2.CAP_V4L2, text), log=log)
    if any(ch in text for ch in "*?["):
        paths = sorted(p for p in glob.glob(text) if is_image_file(p))
        if not paths:
            raise UserError(f"no images match {text}")
        return ImageFilesSource(text, paths, log)
    if os.path.isdir(text):
        paths = sorted(os.path.join(text, n) for n in os.listdir(text)
                       if is_image_file(n))
        if not paths:
            raise UserError(f"{text}: no images in this directory")
        return ImageFilesSource(text, paths, log)
    if not os.path.exists(text):
        raise UserError(f"{text}: no such file, directory or source (sources: camera:N, demo, video or image "
                        f"files, directories, globs, rtsp:// URLs, GStreamer pipelines)")
    if is_image_file(text):
        if cv2.imread(text, cv2.IMREAD_UNCHANGED) is None:
            raise UserError(f"{text}: not a readable image")
        return ImageFilesSource(text, [text], log)
    if realtime:
        probe = open_video_file(text)
        fps = probe.get(cv2.CAP_PROP_FPS) or 30.0
        probe.release()
        return LiveSource(text, lambda: open_video_file(text), finite=True, period=1.0 / fps, log=log)
    return VideoFileSource(text)
