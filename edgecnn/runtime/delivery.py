"""What every output of a run shares, sinks and publishers alike: the `Sink` interface
(write a frame's result, close at the end) and the bounded queue with its own thread
that the runner puts in front of each (`QueuedSink`), so a slow output drops and counts
its own records and never stalls inference."""
from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable, Dict, Optional


class Sink:
    stop = False
    name = ""  # what the summary calls it; default: its sink type's name
    # False for a sink whose write() reads only the result (JSON lines, publishers): its
    # queue then keeps no frame, so a full queue (a broker down) holds no images
    uses_image = True

    def write(self, image, result) -> None:
        raise NotImplementedError

    def records_in(self, result) -> int:
        """What one write of `result` delivers, as its drops are counted: a frame for a
        video; a frame's record and its event records for JSON lines and publishers."""
        return 1

    def close(self, completed: bool = True) -> None:
        pass

    def interrupt(self) -> None:
        """The run is ending: stop waiting for anything outside the process (a broker
        that is down) beyond a short grace period. Called from another thread."""

    def states_changed(self, states: Dict[str, str]) -> None:
        """Each camera's state ({name: starting|live|reconnecting|ended|failed}) after any
        of them changed, for run-wide sinks of a run of several cameras. Called from the
        run's loop: it must not wait for anything."""


class QueuedSink(Sink):
    """`sink` behind a bounded queue served by its own thread. By default write() never
    blocks: when the queue is full the oldest record is dropped and counted (`dropped`,
    and in `stats` under `name`); with wait_when_full=True write() waits for room instead
    and nothing is dropped (a file run's records, where no camera is held up). An error
    raised by the sink on its thread is raised again on the caller's next write() or at
    close(), so a sink that cannot work still ends the run with its one-line message."""

    def __init__(self, sink: Sink, name: str, capacity: int = 8, stats: Any = None,
                 wait_when_full: bool = False) -> None:
        if capacity < 1:
            raise ValueError("a sink queue holds at least one record")
        self.sink, self.name, self.stats = sink, name, stats
        self.wait_when_full = wait_when_full
        self._keeps_image = getattr(sink, "uses_image", True)
        self._queue: collections.deque = collections.deque()
        self._capacity = capacity
        self._condition = threading.Condition()
        self._closing = False
        self._busy = False
        self.dropped = 0
        self.written = 0
        self.error: Optional[BaseException] = None
        self._raised = False
        self._thread = threading.Thread(target=self._serve, name=f"sink {name}", daemon=True)
        self._thread.start()

    @property
    def stop(self) -> bool:  # type: ignore[override]
        return bool(self.sink.stop)

    def write(self, image, result) -> None:
        self._raise_error()
        with self._condition:
            if self.wait_when_full:  # the serving thread notifies after each record, and on an error
                self._condition.wait_for(lambda: len(self._queue) < self._capacity or self._closing)
                if self.error is not None:
                    return  # raised on the next write() or at close()
            if len(self._queue) >= self._capacity:
                lost = self._records_in(self._queue.popleft()[1])
                self.dropped += lost
                if self.stats is not None:
                    self.stats.count_sink_drop(self.name, lost)
            self._queue.append((image if self._keeps_image else None, result))
            self._condition.notify()

    def _records_in(self, result) -> int:
        try:
            return max(1, int(self.sink.records_in(result)))
        except Exception:  # counting must never cost the record's neighbours
            return 1

    def states_changed(self, states: Dict[str, str]) -> None:
        """Passed straight on: a state is not a record to queue behind the frames."""
        self.sink.states_changed(states)

    def _serve(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    return  # closing, and everything queued was written
                image, result = self._queue.popleft()
                self._busy = True
            try:
                self.sink.write(image, result)
                self.written += 1
            except BaseException as exc:  # kept for the caller's thread; this sink takes nothing more
                with self._condition:
                    self.error = exc
                    self._queue.clear()
                    self._closing = True
                    self._busy = False
                    self._condition.notify_all()
                return
            with self._condition:
                self._busy = False
                self._condition.notify_all()

    def drain(self, timeout: Optional[float] = None) -> bool:
        """Wait until every queued record is written; False on timeout."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._queue and not self._busy or self.error is not None,
                                            timeout)

    def _raise_error(self) -> None:
        """Raise the sink's error on the caller's thread, once."""
        if self.error is not None and not self._raised:
            self._raised = True
            raise self.error

    def close(self, completed: bool = True, timeout: Optional[float] = None,
              abandon: Optional[Callable[[], bool]] = None) -> int:
        """Write what is queued, then close the sink (its thread's error, if any, is
        raised here). With a `timeout` (seconds) or an `abandon()` that turns true (a
        second stop signal), what is still queued then is dropped and counted instead,
        and the sink is still closed, so a file it writes is finalised. Returns the
        records dropped here."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self.sink.interrupt()
        deadline = None if timeout is None else time.monotonic() + timeout
        left = 0
        with self._condition:
            while (self._queue or self._busy) and self.error is None:
                if (abandon is not None and abandon()) or (deadline is not None and time.monotonic() >= deadline):
                    left = sum(self._records_in(result) for _, result in self._queue)
                    self._queue.clear()
                    self.dropped += left
                    if left and self.stats is not None:
                        self.stats.count_sink_drop(self.name, left)
                    break
                self._condition.wait(0.05)
        self._thread.join(None if deadline is None else max(1.0, deadline - time.monotonic() + 1.0))
        if self._thread.is_alive():  # its write still hangs (a stalled network): leave it, do not block the exit
            return left
        try:
            self._raise_error()
        finally:
            self.sink.close(completed and self.error is None)
        return left
