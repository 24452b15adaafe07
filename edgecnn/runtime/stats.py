"""Running statistics of a stream: what the web view shows live and the summary prints
at exit (frames, FPS, latency percentiles, drops). Thread-safe: the stream loop
writes, the sinks' threads count what they drop, the web server reads."""
from __future__ import annotations

import collections
import threading
import time
from typing import Dict, Optional

import numpy as np

from edgecnn.runtime.results import describe_items

WINDOW = 100_000  # percentiles over at most this many recent frames


class StreamStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.perf_counter()
        self.first_result: Optional[float] = None
        self.last_result: Optional[float] = None
        self.frames = 0
        self.ages = collections.deque(maxlen=WINDOW)  # capture -> result, ms
        self.inference = collections.deque(maxlen=WINDOW)  # backend call, ms
        self._recent = collections.deque(maxlen=60)  # perf_counter of recent results, for live FPS
        self.dropped = 0
        self.reconnects = 0
        self.status = "running"
        self.sink_dropped: Dict[str, int] = {}  # records each sink's queue dropped (edgecnn.runtime.sinks)
        self._last = None  # the newest result; serialised only when someone asks

    def add(self, result, dropped: int = 0, reconnects: int = 0, status: str = "running") -> None:
        now = time.perf_counter()
        with self._lock:
            if self.first_result is None:
                self.first_result = now
            self.last_result = now
            self.frames += 1
            self.ages.append(result.frame_age_ms)
            self.inference.append(result.inference_ms)
            self._recent.append(now)
            self.dropped, self.reconnects, self.status = dropped, reconnects, status
            self._last = result

    def count_sink_drop(self, sink: str, records: int = 1) -> None:
        with self._lock:
            self.sink_dropped[sink] = self.sink_dropped.get(sink, 0) + records

    def fps(self) -> float:
        """Processed frames per second from the first result to the latest."""
        with self._lock:
            if self.frames < 2 or self.first_result is None or self.last_result is None:
                return 0.0
            return (self.frames - 1) / max(1e-9, self.last_result - self.first_result)

    def recent_fps(self) -> float:
        with self._lock:
            if len(self._recent) < 2:
                return 0.0
            return (len(self._recent) - 1) / max(1e-9, self._recent[-1] - self._recent[0])

    def snapshot(self) -> Dict:
        """Everything the web view's stats panel shows."""
        with self._lock:
            ages = np.asarray(self.ages, np.float64)
            inference = np.asarray(self.inference, np.float64)
            last = self._last.to_dict() if self._last is not None else {}
            items = describe_items(self._last) if self._last is not None else []
            snap = {"frames": self.frames, "dropped": self.dropped, "reconnects": self.reconnects,
                    "sink_dropped": dict(self.sink_dropped), "status": self.status, "items": items, "last": last}
        snap.update({"fps": round(self.fps(), 2), "recent_fps": round(self.recent_fps(), 2),
                     **{f"age_p{q}_ms": _percentile(ages, q) for q in (50, 90, 99)},
                     **{f"inference_p{q}_ms": _percentile(inference, q) for q in (50, 99)}})
        return snap

    def summary(self) -> str:
        snap = self.snapshot()
        return (f"{snap['frames']} frames, {snap['fps']:.1f} FPS, latency (frame age) p50 {snap['age_p50_ms']:.1f} ms "
                f"p99 {snap['age_p99_ms']:.1f} ms, inference p50 {snap['inference_p50_ms']:.1f} ms, "
                f"{snap['dropped']} dropped" + (f", {snap['reconnects']} reconnects" if snap["reconnects"] else "")
                + "".join(f", {sink} sink dropped {count}" for sink, count in sorted(snap["sink_dropped"].items())
                          if count))


def _percentile(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if len(values) else 0.0
