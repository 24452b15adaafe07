"""`edgecnn run`: a model, a source and sinks wired together, with a summary at exit.

Progress and the summary go to stderr, so `--json -` leaves stdout pure JSON lines.
Each sink runs on its own thread behind a bounded queue (edgecnn.runtime.sinks.QueuedSink).
Ctrl-C is the normal way to end a live run: the video written so far is kept.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from edgecnn.core.errors import UserError
from edgecnn.runtime.card_options import CardOptions
from edgecnn.runtime.nms import NMS_IOU
from edgecnn.runtime.sources import open_source, stderr_log


@dataclass
class RunOptions:
    model: Optional[str] = None  # None: the bundled model
    source: Optional[str] = None  # URI; None with camera None: demo
    camera: Optional[int] = None
    backend: str = "auto"
    threads: Optional[int] = None
    max_frames: Optional[int] = None
    realtime: bool = False
    conf: float = 0.25
    iou: Optional[float] = None  # NMS overlap threshold; None: edgecnn.runtime.nms.NMS_IOU
    card: CardOptions = field(default_factory=CardOptions)
    # sink option values by option name (edgecnn.runtime.sinks), e.g. {"json": "-", "save": "out.mp4"}
    sinks: Dict[str, Any] = field(default_factory=dict)
    callbacks: List[Callable] = field(default_factory=list)  # fn(image, result) per frame
    track: Optional[str] = None  # a tracker's name (edgecnn.runtime.trackers); None: no tracking
    # what the tasks' records carry, by record option (a segmenter's masks="contours"): None: the task's default
    records: Dict[str, Any] = field(default_factory=dict)


def source_uri(options: RunOptions) -> str:
    if options.camera is not None and options.source is not None:
        raise UserError("give either --camera N or --source URI, not both")
    if options.camera is not None:
        if options.camera < 0:
            raise UserError(f"--camera takes an index >= 0, got {options.camera}")
        return f"camera:{options.camera}"
    return options.source if options.source is not None else "demo"


def record_options(given: Dict[str, Any]) -> Dict[str, Any]:
    """The record options given, each checked against the tasks' declarations (an
    unknown one is one line listing the known ones); those not given are left out, so
    each task's own default applies."""
    from edgecnn.core.task import record_option_specs

    specs = record_option_specs()
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise UserError(f"unknown record option {unknown[0]!r}; known: {', '.join(specs) or 'none'}")
    chosen = {}
    for name, value in given.items():
        if value is None:
            continue
        choices = specs[name].get("choices")
        if choices is not None and value not in choices:
            raise UserError(f"--{name.replace('_', '-')} must be one of {', '.join(choices)}, got {value!r}")
        chosen[name] = value
    return chosen


def run(options: RunOptions, log: Callable[[str], None] = stderr_log, started: Optional[float] = None) -> dict:
    """Run to the end of the source, --max-frames, a closed window or Ctrl-C; returns the
    final statistics (StreamStats.snapshot() plus first_result_ms)."""
    from edgecnn.runtime.model import load
    from edgecnn.runtime.sinks import QueuedSink, SinkContext, sink_types
    from edgecnn.runtime.sinks.callback import CallbackSink

    started = time.perf_counter() if started is None else started
    if options.max_frames is not None and options.max_frames < 1:
        raise UserError(f"--max-frames must be >= 1, got {options.max_frames}")
    kinds = sink_types()
    unknown = sorted(set(options.sinks) - {dest for kind in kinds for dest in kind.options})
    if unknown:
        raise UserError(f"unknown sink option {unknown[0]!r}; known: "
                        f"{', '.join(dest for kind in kinds for dest in kind.options)}")
    for kind in kinds:
        kind.check(options.sinks)
    model = load(options.model, backend=options.backend, threads=options.threads, card=options.card,
                 conf_threshold=options.conf,
                 iou_threshold=NMS_IOU if options.iou is None else options.iou, log=None)
    uri = source_uri(options)
    source = open_source(uri, realtime=options.realtime, log=log)
    stream = model.stream(source, max_frames=options.max_frames, track=options.track)
    context = SinkContext(source_name=source.name, fps=source.fps if source.fps and source.fps > 0 else 30.0,
                          stats=stream.stats, log=log, record_options=record_options(options.records))
    chosen = [(kind, options.sinks) for kind in kinds if kind.wanted(options.sinks)]
    if not chosen and not options.callbacks:
        # the default sink, with whatever else was given for it
        chosen = [(kind, {**options.sinks, **kind.default}) for kind in kinds if kind.default is not None]
    sinks = []
    try:
        for kind, values in chosen:  # each behind its own queue and thread; a live source never waits for one
            sinks.extend(QueuedSink(sink, sink.name or kind.name, kind.queue_size, stream.stats,
                                    wait_when_full=kind.records_the_run and not source.live)
                         for sink in kind.open(values, context))
        sinks.extend(QueuedSink(CallbackSink(fn), "callback", stats=stream.stats) for fn in options.callbacks)
    except BaseException:
        for sink in sinks:
            sink.close(completed=False)
        stream.close()
        raise
    name = os.path.basename(model.backend.path)
    if model.choice:
        log(model.choice)
    log(f"running {name} ({model.task}, {len(model.labels)} labels, {model.backend.name}) on {source.name}")
    first_result_ms = None
    completed = False
    try:
        for image, result in stream:
            if first_result_ms is None:
                first_result_ms = (time.perf_counter() - started) * 1000
            for sink in sinks:
                sink.write(image, result)
            if any(sink.stop for sink in sinks):
                break
        completed = True
    except KeyboardInterrupt:
        completed = True  # stopping a live run by hand is a normal end
        log("interrupted")
    finally:
        stream.close()
        for sink in sinks:
            sink.close(completed)
    summary = stream.stats.snapshot()
    summary["first_result_ms"] = round(first_result_ms, 1) if first_result_ms is not None else None
    summary.pop("last", None)
    summary.pop("items", None)
    log(f"summary: {stream.stats.summary()}" +
        (f", first result {first_result_ms:.0f} ms after start" if first_result_ms is not None else ""))
    if options.sinks.get("save") and stream.stats.frames:
        lost = stream.stats.sink_dropped.get("video", 0)
        log(f"annotated video: {options.sinks['save']}" + (f" ({lost} frames dropped: the encoder fell behind)"
                                                           if lost else ""))
    return summary
