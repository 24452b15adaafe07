"""`--health HOST:PORT` (`health:` in a config file): /healthz and /metrics alone, for a
service manager, an orchestrator's probes and a Prometheus scraper, without the web
view's video.

    /healthz   200 when every camera is live, 503 otherwise, with a JSON body per
               camera: state, frames, fps, seconds since its last result, reconnects
    /metrics   the Prometheus text format (edgecnn.runtime.metrics)

A camera counts as live when its reader says so and its last result is recent
(StreamStats.stalled: within 5 frame periods, and at least 2 s), so a stream that froze
without closing is reported before the reader's own timeout reopens it.

Served by edgecnn.runtime.http_server (a fixed number of threads, timeouts, bounded
requests). It binds loopback by default, and there answers only requests whose Host
header names loopback (a rebound DNS name gets 403). It takes no token, on any address:
it shows no image and no result, only each camera's state and counters, and what reads
it (a kubelet's httpGet probe, a Prometheus scrape, a Docker or systemd health check)
is set up in files where a secret does not belong. Bind it off loopback only where the
network may see those counters; the web view (--serve) serves both paths under its own
token rules.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

from edgecnn.core.errors import UserError
from edgecnn.runtime.http_server import (BoundedHTTPServer, RequestHandler, is_loopback, loopback_hosts,
                                         parse_address, server_url)
from edgecnn.runtime.stats import by_camera

WORKERS = 2  # probes and scrapes are short: two at once, the rest wait in the server's queue
PATHS = ("/healthz", "/metrics")


def health_report(stats: Any) -> Tuple[bool, Dict]:
    """(every camera live, the body /healthz answers with)."""
    cameras = {}
    for name, camera in by_camera(stats).items():
        snap = camera.snapshot()
        live = snap["state"] == "live" and not snap["stalled"]
        cameras[name] = {"state": snap["state"], "live": live, "stalled": snap["stalled"], "frames": snap["frames"],
                         "fps": snap["recent_fps"], "last_frame_age_s": snap["age_s"],
                         "reconnects": snap["reconnects"]}
    healthy = bool(cameras) and all(camera["live"] for camera in cameras.values())
    return healthy, {"status": "ok" if healthy else "unavailable", "cameras": cameras}


def answer(handler: RequestHandler, path: str, stats: Any, metrics: Any) -> None:
    """/healthz or /metrics, for the health server and the web view alike."""
    if path == "/healthz":
        healthy, body = health_report(stats)
        handler.send_body(200 if healthy else 503, json.dumps(body).encode(), "application/json")
        return
    try:
        body, content_type = metrics.exposition()
    except ImportError:
        handler.send_body(501, b"/metrics needs prometheus_client: pip install 'edgecnn[runtime]'\n")
        return
    handler.send_body(200, body, content_type)


class _Handler(RequestHandler):
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        if path not in PATHS:
            self.send_body(404, b"not found: this server answers /healthz and /metrics\n")
            return
        answer(self, path, self.server.health.stats, self.server.health.metrics)


class _Server(BoundedHTTPServer):
    health: "HealthServer"


class HealthServer:
    """Serves /healthz and /metrics of `stats` (a RunStats, or one stream's StreamStats)
    from the moment it is made until close()."""

    def __init__(self, address: str, stats: Any, metrics: Any,
                 log: Optional[Callable[[str], None]] = None) -> None:
        host, port = parse_address(address, "--health")
        self.stats, self.metrics, self.log = stats, metrics, log
        try:
            self.server = _Server((host, port), _Handler, workers=WORKERS, log=log)
        except OSError as exc:
            raise UserError(f"--health {address}: cannot listen ({exc.strerror or exc})") from None
        self.loopback = is_loopback(host)
        if self.loopback:  # the port is known once bound (":0" picks one)
            self.server.allowed_hosts = set(loopback_hosts(self.server.server_address[1]))
        self.server.health = self
        self.server.start()

    @property
    def url(self) -> str:
        return server_url(self.server.server_address)

    def close(self) -> None:
        self.server.close()
