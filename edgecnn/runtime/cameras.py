"""One camera of a run: its source read on a thread of its own into a one-frame slot,
so that the scheduler takes each camera's newest frame without ever waiting on one
camera. A camera that stalls, disconnects or ends only changes its own state:

    starting      opening its source
    live          frames are arriving
    reconnecting  its device or stream went away (or was offline at start); retried with backoff
    ended         a finite source (a file) ran out
    failed        it cannot work (a file that does not decode, an error in its reader)

A live source's slot keeps only the newest frame (an older one not yet taken is
dropped and counted); a file's slot waits until its frame is taken, so a file run
still processes every frame in order.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional

from edgecnn.core.errors import UserError
from edgecnn.runtime.sources import Frame, Source, open_source, stderr_log

STATES = ("starting", "live", "reconnecting", "ended", "failed")


class CameraFeed:
    """Reads one source into a slot. `opener()` opens the source; a live source whose
    first open fails keeps being retried with backoff (an offline camera at start is
    not an error), a file's failure ends the camera as failed."""

    def __init__(self, name: str, uri: str, *, realtime: bool = False, log: Callable[[str], None] = stderr_log,
                 wakeup: Optional[threading.Condition] = None, first_backoff: float = 0.5,
                 max_backoff: float = 10.0, prepare: Optional[Callable] = None, source: Optional[Source] = None):
        self.name, self.uri, self.realtime, self.log = name, uri, realtime, log
        self._state = "starting"
        self.reason = ""  # why it is reconnecting or failed
        self.source: Optional[Source] = source
        self.prepare = prepare  # the model's preprocessing, run here for files (overlaps inference)
        self.dropped = 0  # frames replaced in the slot before the scheduler took them
        self.open_retries = 0  # failed first opens of a source that was offline at start
        self.frames_in = 0
        self.started = time.perf_counter()
        self.last_frame_clock: Optional[float] = None
        self._wakeup = wakeup or threading.Condition()
        self._slot: Optional[Frame] = None
        self._stop = threading.Event()
        self._backoff = (first_backoff, max_backoff)
        self._thread = threading.Thread(target=self._run, name=f"camera {name}", daemon=True)

    # ------------------------------------------------------------------ reader thread

    def start(self) -> "CameraFeed":
        self._thread.start()
        return self

    def _open_with_retry(self) -> Optional[Source]:
        """The source, opened; a live source that will not open is retried with backoff."""
        attempt = 0
        while not self._stop.is_set():
            try:
                return open_source(self.uri, realtime=self.realtime, log=self._camera_log)
            except UserError as exc:
                if not self._retries_on_failure():
                    self._fail(str(exc))
                    return None
                delay = min(self._backoff[0] * 2 ** attempt, self._backoff[1])
                self._set_state("reconnecting", str(exc))
                self.log(f"camera {self.name}: {exc}; retrying in {delay:.1f} s")
                attempt += 1
                self.open_retries += 1
                if self._stop.wait(delay):
                    return None
        return None

    def _retries_on_failure(self) -> bool:
        """Live sources (cameras, streams, pipelines) may come back; files do not."""
        from edgecnn.runtime.sources import source_for

        return source_for(self.uri).live

    def _camera_log(self, message: str) -> None:
        self.log(f"camera {self.name}: {message}")

    def _run(self) -> None:
        try:
            source = self.source if self.source is not None else self._open_with_retry()
            if source is None:
                return
            self.source = source
            if not source.live and self.prepare is not None:
                source.prepare = self.prepare
            for frame in source:
                if self._stop.is_set():
                    break
                self._set_state("live")
                self._put(frame, wait=not source.live)
            if not self._stop.is_set() and self._state != "failed":
                self._set_state("ended")
        except Exception as exc:  # a reader's own failure fails this camera only
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            with self._wakeup:
                self._wakeup.notify_all()

    def _put(self, frame: Frame, wait: bool) -> None:
        with self._wakeup:
            if wait:  # a file: every frame is taken, in order
                while self._slot is not None and not self._stop.is_set():
                    self._wakeup.wait(0.1)
            elif self._slot is not None:
                self.dropped += 1
            self._slot = frame
            self.frames_in += 1
            self.last_frame_clock = time.perf_counter()
            self._wakeup.notify_all()

    def _set_state(self, state: str, reason: str = "") -> None:
        if state != self._state:
            self._state, self.reason = state, reason
            with self._wakeup:
                self._wakeup.notify_all()

    @property
    def state(self) -> str:
        """Its own state, or "reconnecting" while its live source is reopening a device."""
        if self._state == "live" and getattr(self.source, "status", "running") == "reconnecting":
            return "reconnecting"
        return self._state

    @property
    def reconnects(self) -> int:
        return (self.source.reconnects if self.source is not None else 0) + min(self.open_retries, 1)

    def _fail(self, reason: str) -> None:
        self.log(f"camera {self.name} failed: {reason}")
        self._set_state("failed", reason)

    # ------------------------------------------------------------------ scheduler side

    def take(self) -> Optional[Frame]:
        """The waiting frame, if any (call with the wakeup condition held)."""
        frame, self._slot = self._slot, None
        return frame

    @property
    def has_frame(self) -> bool:
        return self._slot is not None

    @property
    def finished(self) -> bool:
        """Ended or failed, with nothing left in its slot."""
        return self.state in ("ended", "failed") and self._slot is None

    @property
    def source_dropped(self) -> int:
        """Frames its source dropped plus those its slot replaced."""
        return self.dropped + (self.source.dropped if self.source is not None else 0)

    @property
    def skipped(self) -> int:
        return self.source.skipped if self.source is not None else 0

    @property
    def fps(self) -> float:
        return self.source.fps if self.source is not None and self.source.fps and self.source.fps > 0 else 0.0

    def stop(self) -> None:
        self._stop.set()
        with self._wakeup:
            self._wakeup.notify_all()
        if self.source is not None:
            self.source.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


def start_feeds(feeds: List[CameraFeed]) -> List[CameraFeed]:
    for feed in feeds:
        feed.start()
    return feeds
