"""The sink seam: where results go. A sink kind is one module here exposing `SINK`, a
`SinkType`: the command-line options that turn it on (the CLI adds them from this
registry) and how to open it. An open sink gets write(image, result) per frame and
close(completed) at the end; a sink that wants the run to end (a closed window) sets
`stop`.

The runner wraps every open sink in a `QueuedSink`: a bounded queue and a thread of its
own, so a slow sink (a stalled broker, a slow disk, a sleeping callback) never makes
inference wait. When a sink falls behind, its oldest records are dropped and counted
(the summary and the web view show the counts); a sink type that should lose nothing
(the video file) asks for a deeper queue and the summary says if it still dropped.

Without any sink option, `edgecnn run` writes JSON lines to stdout (the `jsonl` sink).
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from edgecnn.core.registry import Registry

_SINKS = Registry("edgecnn.runtime.sinks", "SINK", "sink")


class Sink:
    stop = False
    name = ""  # what the summary calls it; default: its sink type's name

    def write(self, image, result) -> None:
        raise NotImplementedError

    def close(self, completed: bool = True) -> None:
        pass

    def interrupt(self) -> None:
        """The run is ending: stop waiting for anything outside the process (a broker
        that is down) beyond a short grace period. Called from another thread."""


@dataclass
class SinkContext:
    """What a sink may need from the run: the source's name and frame rate, the live
    statistics and the log."""

    source_name: str = ""
    fps: float = 30.0
    stats: Any = None
    log: Callable[[str], None] = print


@dataclass
class SinkType:
    """One kind of sink. `options` maps each command-line option (its `dest` name) to
    argparse keyword arguments; the first option turns the sink on. A run's sink values
    are a dict {option dest: value}."""

    name: str
    options: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    opener: Optional[Callable[[Dict[str, Any], SinkContext], Sink]] = None
    checker: Optional[Callable[[Dict[str, Any]], None]] = None
    default: Optional[Dict[str, Any]] = None  # values it opens with when the run names no sink
    queue_size: int = 8  # records waiting for this sink before the oldest is dropped
    # a file that records the run (JSON lines, video): from a source that is not live (a
    # file read as fast as it decodes) it keeps every record, making inference wait for it
    records_the_run: bool = False

    def wanted(self, values: Dict[str, Any]) -> bool:
        return bool(self.options) and values.get(next(iter(self.options))) not in (None, False)

    def check(self, values: Dict[str, Any]) -> None:
        """Raise UserError for option values that cannot work, before anything opens."""
        if self.checker is not None:
            self.checker(values)

    def open(self, values: Dict[str, Any], context: SinkContext) -> List[Sink]:
        """The open sinks: one, or one per destination (each then gets its own queue)."""
        opened = self.opener(values, context)
        return list(opened) if isinstance(opened, (list, tuple)) else [opened]


def sink_names() -> List[str]:
    return _SINKS.names()


def get_sink(name: str) -> SinkType:
    return _SINKS.get(name)


def sink_types() -> List[SinkType]:
    return _SINKS.all()


def option_dests() -> List[str]:
    return [dest for kind in sink_types() for dest in kind.options]


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
                self._queue.popleft()
                self.dropped += 1
                if self.stats is not None:
                    self.stats.count_sink_drop(self.name)
            self._queue.append((image, result))
            self._condition.notify()

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

    def close(self, completed: bool = True) -> None:
        """Write what is queued, then close the sink (its thread's error, if any, is
        raised here)."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self.sink.interrupt()
        self._thread.join()
        try:
            self._raise_error()
        finally:
            self.sink.close(completed and self.error is None)
