"""Live sources: a capture thread keeps only the newest frame, so when inference is
slower than the source, old frames are dropped (and counted) instead of queueing up,
and the age of each answer stays bounded. A device that fails mid-run is reopened with
backoff (each attempt reported), never crashing the run."""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterator, Optional

import cv2

from edgecnn.runtime.sources import Frame, Source, stderr_log


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
