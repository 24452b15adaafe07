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

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from edgecnn.core.registry import Registry
from edgecnn.runtime.delivery import QueuedSink, Sink  # noqa: F401  (what sink modules build on)

_SINKS = Registry("edgecnn.runtime.sinks", "SINK", "sink")


@dataclass
class SinkContext:
    """What a sink may need from the run: the source's name and frame rate, the live
    statistics, each camera's model card and the run's metrics (what the web view
    shows), and the log."""

    source_name: str = ""
    fps: float = 30.0
    stats: Any = None
    log: Callable[[str], None] = print
    # what the tasks' records carry by option (a segmenter's masks=): the same for every
    # output that writes records (JSON lines, every publisher)
    record_options: Dict[str, Any] = field(default_factory=dict)
    cards: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # {camera: its model's card as a dict}
    metrics: Any = None  # the run's RunMetrics (edgecnn.runtime.metrics), for /metrics
    camera: str = ""  # the camera a per-camera sink serves ("" for a run-wide one)
    # {camera: {"zones": {name: labels}, "lines": {name: labels}}}: what home automation is told about
    places: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    # {camera: the directory its event clips go to} ("" for a one-camera run's or the
    # run's own): what the web view lists at /clips
    clip_dirs: Dict[str, str] = field(default_factory=dict)


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
    # the files it writes, from its option values: claimed before the run starts
    # (edgecnn.runtime.outputs), so that none is an input or written twice
    writes: Optional[Callable[[Dict[str, Any]], List[str]]] = None
    # "any": per camera or for the whole run; "run": once per run (the web view, publishers)
    scope: str = "any"

    # the directories it writes files into, from its option values: made and checked at start
    writes_into: Optional[Callable[[Dict[str, Any]], List[str]]] = None

    def directories(self, values: Dict[str, Any]) -> List[str]:
        return [path for path in (self.writes_into(values) if self.writes_into and self.wanted(values) else [])
                if path]

    def outputs(self, values: Dict[str, Any]) -> List[str]:
        return [path for path in (self.writes(values) if self.writes and self.wanted(values) else []) if path]

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
