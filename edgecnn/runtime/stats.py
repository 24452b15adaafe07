"""Running statistics of a stream: what the web view shows live and the summary prints
at exit (frames, FPS, latency percentiles, drops), what /healthz judges and /metrics
exposes (cumulative histograms), and the per-second series the web view charts.
Thread-safe: the stream loop writes, the sinks' threads count what they drop, the web
server reads."""
from __future__ import annotations

import bisect
import collections
import math
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.runtime.results import describe_items

SERIES_SECONDS = 600  # the chart's span: one point per second for the last ten minutes
# a camera whose reader still says live but whose last result is older than this many
# frame periods, and at least STALL_SECONDS, is stalled (a frozen stream not yet noticed)
STALL_SECONDS, STALL_PERIODS = 2.0, 5
# histogram bucket bounds in seconds (Prometheus' convention): inference on a small
# board runs from about a millisecond to seconds; a frame's age adds the queueing
INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FRAME_AGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Counts of observations per bucket, never reset (unlike the percentiles' window):
    a Prometheus histogram stays cumulative for the life of the run."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> List[Tuple[float, int]]:
        """(upper bound, observations at or below it), the last bound infinite."""
        running, buckets = 0, []
        for bound, count in zip(self.bounds + (float("inf"),), self._counts):
            running += count
            buckets.append((bound, running))
        return buckets


class LogQuantiles:
    """Percentiles of a whole run in constant memory: counts in buckets 1% wide on a
    logarithmic scale (a percentile is the middle of its bucket, within 0.5% of the
    sample at that rank), from 1 microsecond to about 28 hours in milliseconds. A
    window of the samples themselves grew by 16 bytes a frame until it was full, and
    each percentile copied it: on a 15 FPS camera the process grew for two hours, and
    the copies, made on the web view's threads, kept a few MB in each thread's heap
    (benchmarks/RESULTS.md, Soak and faults)."""

    LOW_MS, RATIO = 1e-3, 1.01
    BUCKETS = 2 + int(math.log(1e8 / LOW_MS) / math.log(RATIO))  # [0, LOW], then 1% each, then above
    _LOG_RATIO = math.log(RATIO)

    def __init__(self) -> None:
        self.counts = np.zeros(self.BUCKETS, np.int64)
        self.count = 0

    def add(self, value_ms: float) -> None:
        if not value_ms > self.LOW_MS:  # also NaN: counted at the bottom rather than lost
            index = 0
        else:
            index = min(self.BUCKETS - 1, 1 + int(math.log(value_ms / self.LOW_MS) / self._LOG_RATIO))
        self.counts[index] += 1
        self.count += 1

    def percentile(self, q: float) -> float:
        """The value at percentile q (0-100): the middle of the bucket holding the sample
        of that rank (rank q/100 * (n - 1), as numpy's default takes it, rounded)."""
        if not self.count:
            return 0.0
        rank = int(round(q / 100 * (self.count - 1)))
        index = int(np.searchsorted(np.cumsum(self.counts), rank + 1))
        if index == 0:
            return 0.0
        low = self.LOW_MS * self.RATIO ** (index - 1)
        return low * math.sqrt(self.RATIO)  # the bucket's geometric middle


class PerSecond:
    """Mean inference time and frame age per second over the last `seconds`: a bounded
    series for the web view's chart, kept whether or not anyone watches. Seconds are
    counted from the stream's start (a monotonic clock: a wall-clock step never
    reorders it); a second without results has no point."""

    def __init__(self, origin: float, seconds: int = SERIES_SECONDS) -> None:
        self.origin, self.seconds = origin, seconds
        self._points: collections.deque = collections.deque(maxlen=seconds)
        self._second: Optional[int] = None
        self._frames, self._inference, self._age = 0, 0.0, 0.0

    def add(self, now: float, inference_ms: float, age_ms: float) -> None:
        second = int(now - self.origin)
        if second != self._second:
            self._close()
            self._second = second
        self._frames += 1
        self._inference += inference_ms
        self._age += age_ms

    def _close(self) -> None:
        if self._frames:
            self._points.append({"t": self._second, "frames": self._frames,
                                 "inference_ms": round(self._inference / self._frames, 2),
                                 "age_ms": round(self._age / self._frames, 2)})
        self._frames, self._inference, self._age = 0, 0.0, 0.0

    def points(self, now: float, after: float = -1) -> Dict:
        """The completed seconds after `after`, within the last `seconds`, and `now` (in
        the same seconds, for the chart's time axis)."""
        current = now - self.origin
        if self._second is not None and self._second < int(current):
            self._close()
            self._second = None
        oldest = current - self.seconds
        return {"now": round(current, 2), "points": [p for p in self._points if p["t"] > max(after, oldest)]}


class StreamStats:
    """One camera's (or one stream's) statistics."""

    def __init__(self, camera: str = "") -> None:
        self.camera = camera
        self._lock = threading.Lock()
        self.started = time.perf_counter()
        self.first_result: Optional[float] = None
        self.last_result: Optional[float] = None
        self.frames = 0
        self.ages = LogQuantiles()  # capture -> result, ms, over the whole run
        self.inference = LogQuantiles()  # backend call, ms
        self._recent = collections.deque(maxlen=60)  # perf_counter of recent results, for live FPS
        self.dropped = 0
        self.reconnects = 0
        self.skipped = 0  # inputs that could not be decoded
        self.status = "running"
        self.state = "starting"  # edgecnn.runtime.cameras.STATES
        self.batch = 1  # images in the inference call of its latest frame
        self.sink_dropped: Dict[str, int] = {}  # records each sink's queue dropped (edgecnn.runtime.sinks)
        self._last = None  # the newest result; serialised only when someone asks
        self.inference_seconds = Histogram(INFERENCE_BUCKETS)
        self.frame_age_seconds = Histogram(FRAME_AGE_BUCKETS)
        self.series = PerSecond(self.started)

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
            self.ages.add(result.frame_age_ms)
            self.inference.add(result.inference_ms)
            self.frame_age_seconds.observe(result.frame_age_ms / 1000)
            self.inference_seconds.observe(result.inference_ms / 1000)
            self.series.add(now, result.inference_ms, result.frame_age_ms)
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
            return self._recent_fps()

    def _recent_fps(self) -> float:
        if len(self._recent) < 2:
            return 0.0
        return (len(self._recent) - 1) / max(1e-9, self._recent[-1] - self._recent[0])

    def stalled(self, now: Optional[float] = None) -> bool:
        """Whether its reader says live but no result came for STALL_PERIODS frame periods
        (at its recent rate) and at least STALL_SECONDS: a camera that froze without
        closing its stream is not live, whatever its reader has noticed so far."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            if self.state != "live" or self.last_result is None:
                return False
            fps = self._recent_fps()
            deadline = max(STALL_SECONDS, STALL_PERIODS / fps if fps > 0 else 0.0)
            return now - self.last_result > deadline

    def histograms(self) -> Dict[str, Tuple[List[Tuple[float, int]], float]]:
        """Inference time and frame age (seconds) as cumulative buckets and their sum,
        read together: what /metrics exposes."""
        with self._lock:
            return {name: (histogram.cumulative(), histogram.sum) for name, histogram in
                    (("inference_seconds", self.inference_seconds), ("frame_age_seconds", self.frame_age_seconds))}

    def series_points(self, after: float = -1) -> Dict:
        """The chart's points after second `after` (PerSecond.points)."""
        with self._lock:
            return self.series.points(time.perf_counter(), after)

    def snapshot(self) -> Dict:
        """Everything the web view's stats panel shows."""
        with self._lock:
            percentiles = {**{f"age_p{q}_ms": _percentile(self.ages, q) for q in (50, 90, 99)},
                           **{f"inference_p{q}_ms": _percentile(self.inference, q) for q in (50, 99)}}
            last = self._last.to_dict() if self._last is not None else {}
            items = describe_items(self._last) if self._last is not None else []
            snap = {"frames": self.frames, "dropped": self.dropped, "reconnects": self.reconnects,
                    "skipped": self.skipped, "sink_dropped": dict(self.sink_dropped), "status": self.status,
                    "state": self.state, "batch": self.batch, "items": items, "last": last,
                    "age_s": round(time.perf_counter() - self.last_result, 2) if self.last_result else None}
            if self.camera:
                snap["camera"] = self.camera
        snap["stalled"] = self.stalled()
        snap.update({"fps": round(self.fps(), 2), "recent_fps": round(self.recent_fps(), 2), **percentiles})
        return snap

    def summary(self) -> str:
        snap = self.snapshot()
        return (f"{snap['frames']} frames, {snap['fps']:.1f} FPS, latency (frame age) p50 {snap['age_p50_ms']:.1f} ms "
                f"p99 {snap['age_p99_ms']:.1f} ms, inference p50 {snap['inference_p50_ms']:.1f} ms, "
                f"{snap['dropped']} dropped" + (f", {snap['reconnects']} reconnects" if snap["reconnects"] else "")
                + (f", {snap['skipped']} inputs skipped (could not be decoded)" if snap["skipped"] else "")
                + "".join(f", {sink} sink dropped {count}" for sink, count in sorted(snap["sink_dropped"].items())
                          if count))


def _percentile(values: LogQuantiles, q: float) -> float:
    return round(values.percentile(q), 2)


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


def by_camera(stats) -> Dict[str, StreamStats]:
    """Each camera's statistics by name, from a run's RunStats or one stream's
    StreamStats (a one-camera run: its camera, or "camera" when it has no name)."""
    if isinstance(stats, RunStats):
        return dict(stats.cameras)
    return {stats.camera or "camera": stats}
