"""`edgecnn bench --pipeline SOURCE`: what a camera application sees, not just the model.

Frames come from the runtime's own source (a capture thread that keeps only the
newest frame for live sources; video files are paced at their frame rate, like a
camera) and go through the same `Model.predict` as `edgecnn run` (preprocess,
backend, decode). Per frame it records
- frame age at start: how old the frame already was when processing started
  (waiting for the previous frame's inference), and
- capture-to-result: from capture until the decoded result exists (what the
  runtime stamps on each result as `frame_age_ms`),
plus the sustained FPS and the frames the source dropped because inference was slower.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

from edgecnn.core.errors import UserError


def _percentiles(values) -> Dict[str, float]:
    from edgecnn.bench.measure import latency_stats

    stats = latency_stats(values)
    return {k: stats[k] for k in ("p50", "p90", "p99", "mean", "max")}


def measure_pipeline(backend, source: str, frames: int,
                     progress: Optional[Callable[[int], None]] = None) -> Dict[str, Any]:
    """Run `frames` frames of `source` through the model loaded in `backend`."""
    from edgecnn.runtime.model import Model
    from edgecnn.runtime.sources import open_source

    if backend.card is None:
        return {"source": source, "error": "the model has no card: the pipeline needs its pre/post-processing"}
    model = Model(backend, backend.card)
    ages, totals = [], []
    messages = []
    try:
        opened = open_source(source, realtime=True, log=messages.append)
    except UserError as exc:
        return {"source": source, "error": str(exc)}
    started = time.perf_counter()
    try:
        for frame in opened:
            picked = time.perf_counter()
            model.predict(frame.image, frame_index=frame.index, capture_time=frame.capture_time,
                          capture_clock=frame.capture_clock)
            done = time.perf_counter()
            ages.append((picked - frame.capture_clock) * 1e3)
            totals.append((done - frame.capture_clock) * 1e3)
            if progress:
                progress(1)
            if len(totals) >= frames:
                break
    except UserError as exc:
        return {"source": source, "error": str(exc)}
    finally:
        elapsed = time.perf_counter() - started
        opened.close()
    if not totals:
        return {"source": source, "error": "the source gave no frames" + (f" ({messages[-1]})" if messages else "")}
    return {"source": source, "frames": len(totals), "fps": round(len(totals) / elapsed, 2),
            "source_fps": round(float(getattr(opened, "fps", 0.0) or 0.0), 2),
            "dropped": int(getattr(opened, "dropped", 0)), "frame_age_at_start_ms": _percentiles(ages),
            "end_to_end_ms": _percentiles(totals)}
