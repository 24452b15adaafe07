"""File sources: every frame in order. From the first iteration on, a reader thread
decodes (and, given the model's preprocessing, prepares) ahead into a small queue, so
that work overlaps inference.

A video file's frames are timed on the file's own clock: capture_time is the time the
first frame was taken for processing plus the frame's position in the file, so that
what is measured in seconds (time spent in a zone, dwell events, the seconds around an
event clip) follows the video, not how fast this machine reads it."""
from __future__ import annotations

import queue
import threading
import time
from typing import Iterator, Optional

import cv2

from edgecnn.core.errors import UserError
from edgecnn.core.descriptors import native_stderr
from edgecnn.runtime.sources import Frame, Source

_END = object()


class ReadAheadSource(Source):
    """Every frame of a file source in order; from the first iteration on, a reader
    thread decodes (and, given `prepare`, preprocesses) ahead into a small queue so
    that work overlaps inference. Subclasses say how to read: `_images()` yields
    (index, image); `_release()` frees what a source never iterated holds."""

    def __init__(self, name: str, ahead: int = 4) -> None:
        self.name = name
        self._clock_start: Optional[float] = None  # wall time of a video file's first frame taken
        self._queue: "queue.Queue" = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, name=f"decode {name}", daemon=True)

    def _images(self) -> Iterator[tuple]:
        raise NotImplementedError

    def _media_time(self, index: int) -> Optional[float]:
        """Seconds into the file of frame `index` (None: the source has no clock of its own)."""
        return None

    def _release(self) -> None:
        pass

    def _run(self) -> None:
        try:
            for index, image in self._images():
                if self._stop.is_set():
                    break
                prepare = self.prepare
                self._put(Frame(image, index, time.time(), time.perf_counter(),
                                prepare(image) if prepare is not None else None, self._media_time(index)))
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
            if item.media_time is not None:
                if self._clock_start is None:
                    self._clock_start = item.capture_time - item.media_time
                item.capture_time = self._clock_start + item.media_time
            yield item

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is None:
            self._release()
        else:
            self._thread.join(timeout=5)


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
