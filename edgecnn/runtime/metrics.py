"""/metrics: a run's statistics in the Prometheus text format, written by
prometheus_client from a collector that reads the live statistics at each scrape, so
the numbers are the ones the summary prints (no second bookkeeping to drift). Each run
has a CollectorRegistry of its own, never the process-wide default one: two runs in
one process (the Python API, tests) never mix, and the process's own metrics (GC,
file descriptors) stay out.

Per camera (label `camera`):
    edgecnn_camera_frames_total               results
    edgecnn_camera_dropped_frames_total       frames the camera gave that were never inferred
    edgecnn_camera_skipped_inputs_total       inputs that could not be decoded
    edgecnn_camera_reconnects_total
    edgecnn_camera_state{state=...}           1 for its state, 0 for the others
    edgecnn_camera_live                       1 when /healthz counts it live (not stalled)
    edgecnn_camera_fps                        results per second, recently
    edgecnn_camera_last_result_age_seconds    since its last result
    edgecnn_inference_seconds                 histogram
    edgecnn_frame_age_seconds                 histogram: capture to result
Per sink (label `sink`, and `camera` for a camera's own sinks):
    edgecnn_sink_dropped_records_total
Per publisher that keeps a connection (label `publisher`, the URI without its password):
    edgecnn_publisher_connected, edgecnn_publisher_reconnects_total
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple

from edgecnn.core.errors import UserError
from edgecnn.runtime.cameras import STATES
from edgecnn.runtime.stats import by_camera

INSTALL_HINT = "pip install 'edgecnn[runtime]'"


def require_client() -> None:
    """A one-line error at start where prometheus_client is missing (an older install)."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise UserError(f"--health needs prometheus_client: {INSTALL_HINT}") from None


class RunMetrics:
    """The collector of one run, and its registry. `sinks()` gives the run's open sinks
    as (camera, queued sink) pairs, camera "" for run-wide ones; read at each scrape,
    so sinks opened after this was made are included."""

    def __init__(self, stats: Any, sinks: Optional[Callable[[], Iterable[Tuple[str, Any]]]] = None) -> None:
        self.stats = stats
        self.sinks = sinks or (lambda: ())
        self._registry = None

    @property
    def registry(self):
        if self._registry is None:
            from prometheus_client import CollectorRegistry

            registry = CollectorRegistry(auto_describe=False)
            registry.register(self)
            self._registry = registry
        return self._registry

    def exposition(self) -> Tuple[bytes, str]:
        """The text format and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        def counter(name, documentation, labels=("camera",)):
            return CounterMetricFamily(name, documentation, labels=list(labels))

        frames = counter("edgecnn_camera_frames", "Results, per camera.")
        dropped = counter("edgecnn_camera_dropped_frames", "Frames a camera gave that were never inferred "
                                                           "(replaced by a newer one first).")
        skipped = counter("edgecnn_camera_skipped_inputs", "Inputs that could not be decoded.")
        reconnects = counter("edgecnn_camera_reconnects", "Times a camera's stream was reopened.")
        state = GaugeMetricFamily("edgecnn_camera_state", "1 for the camera's state, 0 for the others.",
                                  labels=["camera", "state"])
        live = GaugeMetricFamily("edgecnn_camera_live", "1 when the camera is live and its results are recent "
                                 "(what /healthz checks).", labels=["camera"])
        fps = GaugeMetricFamily("edgecnn_camera_fps", "Results per second over the recent results.",
                                labels=["camera"])
        age = GaugeMetricFamily("edgecnn_camera_last_result_age_seconds", "Seconds since the camera's last "
                                "result.", labels=["camera"])
        histograms = {
            "inference_seconds": HistogramMetricFamily("edgecnn_inference_seconds", "Inference time per frame "
                                                       "(the backend's call).", labels=["camera"]),
            "frame_age_seconds": HistogramMetricFamily("edgecnn_frame_age_seconds", "Capture to result per "
                                                       "frame.", labels=["camera"])}
        now = time.perf_counter()
        for name, camera in by_camera(self.stats).items():
            snap = camera.snapshot()
            frames.add_metric([name], snap["frames"])
            dropped.add_metric([name], snap["dropped"])
            skipped.add_metric([name], snap["skipped"])
            reconnects.add_metric([name], snap["reconnects"])
            for each in STATES:
                state.add_metric([name, each], 1.0 if snap["state"] == each else 0.0)
            live.add_metric([name], 1.0 if snap["state"] == "live" and not snap["stalled"] else 0.0)
            fps.add_metric([name], snap["recent_fps"])
            if camera.last_result is not None:
                age.add_metric([name], max(0.0, now - camera.last_result))
            for key, (buckets, total) in camera.histograms().items():
                histograms[key].add_metric([name], [(_bound(bound), count) for bound, count in buckets], total)
        yield from (frames, dropped, skipped, reconnects, state, live, fps, age, *histograms.values())
        yield from self._sink_families()

    def _sink_families(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        dropped = CounterMetricFamily("edgecnn_sink_dropped_records", "Records a sink dropped: its queue "
                                      "overflowed or its destination could not take them.",
                                      labels=["sink", "camera"])
        connected = GaugeMetricFamily("edgecnn_publisher_connected", "1 while the publisher is connected to "
                                      "its broker.", labels=["publisher"])
        reconnects = CounterMetricFamily("edgecnn_publisher_reconnects", "Times the publisher reconnected.",
                                         labels=["publisher"])
        for camera, sink in self.sinks():
            stats = getattr(sink, "stats", None)
            counts = dict(getattr(stats, "sink_dropped", {}) or {})
            dropped.add_metric([sink.name, camera], counts.get(sink.name, 0))
            link = getattr(getattr(sink, "sink", sink), "link_state", None)
            state = link() if callable(link) else None
            if state is not None:
                connected.add_metric([sink.name], 1.0 if state["connected"] else 0.0)
                reconnects.add_metric([sink.name], state["reconnects"])
        yield from (dropped, connected, reconnects)


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
