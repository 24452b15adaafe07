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
    """One camera's (or one stream's) statistics."""

    def __init__(self, camera: str = "") -> None:
        self.camera = camera
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
        self.skipped = 0  # inputs that could not be decoded
        self.status = "running"
        self.state = "starting"  # edgecnn.runtime.cameras.STATES
        self.batch = 1  # images in the inference call of its latest frame
        self.sink_dropped: Dict[str, int] = {}  # records each sink's queue dropped (edgecnn.runtime.sinks)
        self._last = None  # the newest result; serialised only when someone asks

    def add(self, result, dropped: int = 0, reconnects: int = 0, status: str = "running", skipped: int = 0,
            batch: int = 1) -> None:
        now = time.perf_counter()
        with self._lock:
            self.skipped, self.batch = skipped, batch
            self.state = "reconnecting" if status == "reconnecting" else "live"
            if self.first_result is None:
                self.first_result = now
            self.last_result = now
            self.frames += 1
            self.ages.append(result.frame_age_ms)
            self.inference.append(result.inference_ms)
            self._recent.append(now)
            self.dropped, self.reconnects, self.status = dropped, reconnects, status
            self._last = result

    def source_changed(self, state: str, dropped: int, reconnects: int, skipped: int) -> None:
        """The camera's state and counts between frames (a stalled or ended camera adds
        no results but its state still shows)."""
        with self._lock:
            self.state, self.dropped, self.reconnects, self.skipped = state, dropped, reconnects, skipped
            self.status = "reconnecting" if state == "reconnecting" else "running"

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
                    "skipped": self.skipped, "sink_dropped": dict(self.sink_dropped), "status": self.status,
                    "state": self.state, "batch": self.batch, "items": items, "last": last,
                    "age_s": round(time.perf_counter() - self.last_result, 2) if self.last_result else None}
            if self.camera:
                snap["camera"] = self.camera
        snap.update({"fps": round(self.fps(), 2), "recent_fps": round(self.recent_fps(), 2),
                     **{f"age_p{q}_ms": _percentile(ages, q) for q in (50, 90, 99)},
                     **{f"inference_p{q}_ms": _percentile(inference, q) for q in (50, 99)}})
        return snap

    def summary(self) -> str:
        snap = self.snapshot()
        return (f"{snap['frames']} frames, {snap['fps']:.1f} FPS, latency (frame age) p50 {snap['age_p50_ms']:.1f} ms "
                f"p99 {snap['age_p99_ms']:.1f} ms, inference p50 {snap['inference_p50_ms']:.1f} ms, "
                f"{snap['dropped']} dropped" + (f", {snap['reconnects']} reconnects" if snap["reconnects"] else "")
                + (f", {snap['skipped']} inputs skipped (could not be decoded)" if snap["skipped"] else "")
                + "".join(f", {sink} sink dropped {count}" for sink, count in sorted(snap["sink_dropped"].items())
                          if count))


def _percentile(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if len(values) else 0.0


class RunStats:
    """Every camera's statistics, and the run-wide outputs' drops: what /stats.json,
    /healthz, /metrics and the summary of a run of several cameras show."""

    def __init__(self, cameras) -> None:
        self.cameras: Dict[str, StreamStats] = {name: StreamStats(name) for name in cameras}
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self.sink_dropped: Dict[str, int] = {}

    def count_sink_drop(self, sink: str, records: int = 1) -> None:
        with self._lock:
            self.sink_dropped[sink] = self.sink_dropped.get(sink, 0) + records

    @property
    def frames(self) -> int:
        return sum(stats.frames for stats in self.cameras.values())

    def snapshot(self) -> Dict:
        cameras = {name: stats.snapshot() for name, stats in self.cameras.items()}
        with self._lock:
            sink_dropped = dict(self.sink_dropped)
        elapsed = max(1e-9, time.perf_counter() - self.started)
        return {"cameras": cameras, "frames": sum(c["frames"] for c in cameras.values()),
                "fps": round(sum(c["fps"] for c in cameras.values()), 2),
                "run_seconds": round(elapsed, 1), "sink_dropped": sink_dropped,
                "states": {name: c["state"] for name, c in cameras.items()}}
