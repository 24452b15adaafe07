"""`edgecnn run`: a model, a source and sinks wired together, with a summary at exit.

Progress and the summary go to stderr, so `--json -` leaves stdout pure JSON lines.
Ctrl-C is the normal way to end a live run: the video written so far is kept.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from edgecnn.errors import UserError
from edgecnn.runtime.card_options import CardOptions
from edgecnn.runtime.detection import NMS_IOU
from edgecnn.runtime.sources import open_source, stderr_log


@dataclass
class RunOptions:
    model: Optional[str] = None  # None: the bundled model
    source: Optional[str] = None  # URI; None with camera None: demo
    camera: Optional[int] = None
    json: Optional[str] = None  # path or "-"
    save: Optional[str] = None
    serve: Optional[str] = None
    token: Optional[str] = None
    show: bool = False
    backend: str = "auto"
    threads: Optional[int] = None
    max_frames: Optional[int] = None
    realtime: bool = False
    conf: float = 0.25
    iou: Optional[float] = None  # NMS overlap threshold; None: edgecnn.runtime.detection.NMS_IOU
    card: CardOptions = field(default_factory=CardOptions)
    callbacks: List[Callable] = field(default_factory=list)  # fn(image, result) per frame


def source_uri(options: RunOptions) -> str:
    if options.camera is not None and options.source is not None:
        raise UserError("give either --camera N or --source URI, not both")
    if options.camera is not None:
        if options.camera < 0:
            raise UserError(f"--camera takes an index >= 0, got {options.camera}")
        return f"camera:{options.camera}"
    return options.source if options.source is not None else "demo"


def run(options: RunOptions, log: Callable[[str], None] = stderr_log, started: Optional[float] = None) -> dict:
    """Run to the end of the source, --max-frames, a closed window or Ctrl-C; returns the
    final statistics (StreamStats.snapshot() plus first_result_ms)."""
    from edgecnn.runtime.model import load
    from edgecnn.runtime.sinks import CallbackSink, JsonLinesSink, VideoSink, WindowSink

    started = time.perf_counter() if started is None else started
    if options.max_frames is not None and options.max_frames < 1:
        raise UserError(f"--max-frames must be >= 1, got {options.max_frames}")
    if options.token is not None and not options.serve:
        raise UserError("--token is for --serve")
    model = load(options.model, backend=options.backend, threads=options.threads, card=options.card,
                 conf_threshold=options.conf,
                 iou_threshold=NMS_IOU if options.iou is None else options.iou)
    uri = source_uri(options)
    source = open_source(uri, realtime=options.realtime, log=log)
    stream = model.stream(source, max_frames=options.max_frames)
    sinks = []
    try:
        if options.json is not None or not (options.save or options.serve or options.show or options.callbacks):
            sinks.append(JsonLinesSink(options.json or "-"))
        if options.save:
            sinks.append(VideoSink(options.save, source.fps))
        if options.show:
            sinks.append(WindowSink(f"edgecnn: {source.name}"))
        if options.serve:
            from edgecnn.runtime.webview import WebView

            view = WebView(options.serve, stream.stats, options.token, title=source.name)
            sinks.append(view)
            log(f"web view: {view.url}")
        sinks.extend(CallbackSink(fn) for fn in options.callbacks)
    except BaseException:
        for sink in sinks:
            sink.close(completed=False)
        stream.close()
        raise
    name = os.path.basename(model.backend.path)
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
    summary.pop("detections", None)
    log(f"summary: {stream.stats.summary()}" +
        (f", first result {first_result_ms:.0f} ms after start" if first_result_ms is not None else ""))
    if options.save and stream.stats.frames:
        log(f"annotated video: {options.save}")
    return summary
