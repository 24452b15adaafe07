"""`--serve HOST:PORT`: a small web view of a running stream, served by
edgecnn.runtime.http_server (standard library only: nothing to install on the device;
bounded threads, timeouts and request sizes, so it can be left running).

One camera (the command line's):

    /             an HTML page: the live annotated video and live statistics
    /stream.mjpg  the annotated frames as an MJPEG stream (multipart/x-mixed-replace)
    /stats.json   FPS, frame-age and inference percentiles, drops (source and sinks), the last
                  result's objects, and the web view's own client counts ("web")

Several cameras (a config file's), pages from edgecnn.runtime.camera_pages:

    /                           a grid of every camera's live video, FPS, frame age,
                                drops and state (live, reconnecting, stalled, ended, failed)
    /camera/NAME                one camera: its video, statistics, model card and a chart
                                of inference time and frame age over the last minutes
    /camera/NAME/stream.mjpg    its annotated frames
    /camera/NAME/series.json    the chart's points, one a second (?after=SECOND: newer ones)
    /stats.json                 every camera's statistics (RunStats.snapshot()) and "web"

Both serve /healthz and /metrics (edgecnn.runtime.health), and where the run keeps event
clips (--clips, or clips: per camera), edgecnn.runtime.clip_pages:

    /clips                      the finished clips, newest first (?camera=NAME: one camera's)
    /clips/NAME                 one clip's video, whole or the byte range asked for (206)

 Binds loopback by default,
and then answers only requests whose Host header names the loopback address (DNS
rebinding gets 403). Any other address needs a token of at least MIN_TOKEN_LENGTH
characters (given as ?token=T or an "Authorization: Bearer T" header) because the page
shows the cameras to whoever connects; the token guards every path. Every other path is
404; at most `max_clients` video viewers at once per camera and `max_clients` clip
downloads at once (503 beyond), and a camera's frames are JPEG-encoded only while
someone watches that camera.
"""
from __future__ import annotations

import hmac
import html
import json
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

import cv2

from edgecnn.core.errors import UserError
from edgecnn.core.redact import redact
from edgecnn.runtime.annotate import annotate
from edgecnn.runtime.http_server import (BoundedHTTPServer, RequestHandler, is_loopback,
                                         loopback_hosts, parse_address, server_url)
from edgecnn.runtime.sinks import Sink, SinkContext, SinkType
from edgecnn.runtime.stats import RunStats, StreamStats

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgecnn: {title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; background: #111; color: #eee; }}
main {{ display: flex; gap: 1.5em; flex-wrap: wrap; }}
img {{ max-width: 100%; border: 1px solid #444; }}
table {{ border-collapse: collapse; }} td {{ padding: 2px 10px; }} td:first-child {{ color: #aaa; }}
</style></head>
<body><h1>edgecnn run: {title}</h1>{clips_link}
<main><img id="video" src="/stream.mjpg{query}" alt="live annotated video">
<section><table id="stats">
<tr><td>status</td><td id="status">-</td></tr>
<tr><td>frames</td><td id="frames">-</td></tr>
<tr><td>FPS</td><td id="fps">-</td></tr>
<tr><td>frame age p50 / p90 / p99</td><td id="latency">-</td></tr>
<tr><td>inference p50 / p99</td><td id="inference">-</td></tr>
<tr><td>dropped</td><td id="dropped">-</td></tr>
<tr><td>reconnects</td><td id="reconnects">-</td></tr>
<tr><td>dropped by sinks</td><td id="sink_dropped">-</td></tr>
</table><h2>Result</h2><ul id="detections"></ul></section></main>
<script>
const query = {query_json};
function set(id, text) {{ document.getElementById(id).textContent = text; }}
async function refresh() {{
  try {{
    const s = await (await fetch("/stats.json" + query, {{cache: "no-store"}})).json();
    set("status", s.status); set("frames", s.frames); set("fps", s.recent_fps.toFixed(1));
    set("latency", `${{s.age_p50_ms}} / ${{s.age_p90_ms}} / ${{s.age_p99_ms}} ms`);
    set("inference", `${{s.inference_p50_ms}} / ${{s.inference_p99_ms}} ms`);
    set("dropped", s.dropped); set("reconnects", s.reconnects);
    set("sink_dropped", Object.entries(s.sink_dropped || {{}}).map(([k, v]) => `${{k}} ${{v}}`).join(", ") || "0");
    const list = document.getElementById("detections");
    list.replaceChildren(...(s.items || []).map(text => {{
      const item = document.createElement("li"); item.textContent = text; return item; }}));
  }} catch (e) {{ set("status", "disconnected"); }}
}}
setInterval(refresh, 500); refresh();
</script></body></html>
"""


MIN_TOKEN_LENGTH = 16
PAGE_WORKERS = 4  # worker threads beyond one per video viewer: the pages and their polls
HEALTH_PATHS = ("/healthz", "/metrics")


def check_token(token: Optional[str]) -> None:
    """A token guards the camera: long enough not to be guessed, and without blanks
    (it travels in URLs and headers, where they do not survive)."""
    if token is None:
        return
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() or not c.isprintable() for c in token):
        raise UserError(f"--token needs at least {MIN_TOKEN_LENGTH} characters and no blanks "
                        f"(e.g. from `openssl rand -hex 16`)")


class Picture:
    """One camera's newest annotated JPEG, its viewers (at most `max_clients`) and the
    condition they wait on for the next one."""

    def __init__(self, max_clients: int) -> None:
        self.viewers = threading.BoundedSemaphore(max_clients)
        self.condition = threading.Condition()
        self.jpeg: Optional[bytes] = None
        self.sequence = 0
        self.watchers = 0

    def wanted(self) -> bool:
        """Someone watches, or no frame was encoded yet (a first viewer gets one at once)."""
        with self.condition:
            return self.watchers > 0 or self.jpeg is None

    def put(self, jpeg: bytes) -> None:
        with self.condition:
            self.jpeg, self.sequence = jpeg, self.sequence + 1
            self.condition.notify_all()


class _Handler(RequestHandler):
    server: "_Server"

    def _authorised(self, query: dict) -> bool:
        token = self.server.view.token
        if not token:
            return True
        given = query.get("token", [""])[0]
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[7:]
        return hmac.compare_digest(given.encode(), token.encode())

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        parts = urlsplit(self.path)
        view = self.server.view
        route = view.route(parts.path)
        if route is None:
            self.send_body(404, b"not found\n")
            return
        query = parse_qs(parts.query)
        if not self._authorised(query):
            self.send_body(401, b"a valid token is required (?token=...)\n")
            return
        what, camera = route
        if what in HEALTH_PATHS:
            from edgecnn.runtime.health import answer

            answer(self, what, view.stats, view.metrics)
        elif what == "stats":
            snapshot = {**view.stats.snapshot(), "web": self.server.counts()}
            self.send_body(200, json.dumps(snapshot).encode(), "application/json")
        elif what == "stream":
            self._stream(view.pictures[camera])
        elif what == "series":
            self._series(view.stats.cameras[camera], query.get("after", ["-1"])[0])
        elif what == "camera":
            from edgecnn.runtime.camera_pages import camera_page

            self.send_body(200, camera_page(camera, view.cards.get(camera), view.query,
                                            clips=bool(view.clip_dirs)).encode(), "text/html; charset=utf-8")
        elif what == "clips":
            from edgecnn.runtime.clip_pages import clips_page, list_clips

            only = query.get("camera", [None])[0]
            self.send_body(200, clips_page(list_clips(view.clip_dirs, only), view.query, only).encode(),
                           "text/html; charset=utf-8")
        elif what == "clip":
            self._clip(camera)
        elif view.several:
            from edgecnn.runtime.camera_pages import grid_page

            self.send_body(200, grid_page(view.title, list(view.pictures), view.query,
                                          clips=bool(view.clip_dirs)).encode(), "text/html; charset=utf-8")
        else:
            clips_link = ""
            if view.clip_dirs:
                from edgecnn.runtime.clip_pages import with_query

                href = html.escape(with_query("/clips", view.query))
                clips_link = f'<p><a id="clips-link" href="{href}">clips</a></p>'
            page = PAGE.format(title=html.escape(view.title), query=html.escape(view.query), clips_link=clips_link,
                               query_json=json.dumps(view.query).replace("<", "\\u003c"))
            self.send_body(200, page.encode(), "text/html; charset=utf-8")

    def _clip(self, name: str) -> None:
        """One finished clip's video (edgecnn.runtime.clip_pages.find_clip decides what
        is one), with Range; at most `max_clients` downloads at once."""
        from edgecnn.runtime.clip_pages import content_type, find_clip

        view = self.server.view
        path = find_clip(view.clip_dirs.values(), name)
        if path is None:
            self.send_body(404, b"no such clip\n")
            return
        if not view.clip_readers.acquire(blocking=False):
            self.send_body(503, f"at most {view.max_clients} clip downloads at once\n".encode())
            return
        try:
            self.send_file(path, content_type(path))
        except FileNotFoundError:  # deleted by retention between the check and the open
            self.send_body(404, b"no such clip\n")
        finally:
            view.clip_readers.release()

    def _series(self, stats: StreamStats, after: str) -> None:
        try:
            since = float(after)
        except ValueError:
            self.send_body(400, b"?after= takes a number of seconds\n")
            return
        self.send_body(200, json.dumps(stats.series_points(since)).encode(), "application/json")

    def _stream(self, picture: Picture) -> None:
        view = self.server.view
        if not picture.viewers.acquire(blocking=False):
            self.send_body(503, f"at most {view.max_clients} viewers at once\n".encode())
            return
        with picture.condition:
            picture.watchers += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.flush()  # the viewer sees the stream open before the first frame
            seen = -1
            while True:
                with picture.condition:
                    fresh = picture.condition.wait_for(lambda: picture.sequence != seen or view.closed,
                                                       timeout=1.0)
                    jpeg, seen = picture.jpeg, picture.sequence
                if view.closed or (not fresh and self.client_left()):  # between frames: still watching?
                    break
                if fresh and jpeg is not None:
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                    self.wfile.flush()
        except OSError as exc:  # the viewer went away or stopped reading
            self.client_failed(exc)
        finally:
            with picture.condition:
                picture.watchers -= 1
            picture.viewers.release()


class _Server(BoundedHTTPServer):
    view: "WebView"


class WebView(Sink):
    """A sink serving the pages, the MJPEG streams and the stats while the run goes on.
    `stats`: one stream's StreamStats (the one-camera page) or a run's RunStats (the
    grid and a page per camera); `cards`: each camera's model card as a dict;
    `metrics`: the run's RunMetrics for /metrics (made from `stats` when not given);
    `clip_dirs`: {camera: the directory its event clips go to} ("" for the run's own),
    listed at /clips."""

    def __init__(self, address: str, stats: Any, token: Optional[str] = None, title: str = "",
                 max_clients: int = 4, jpeg_quality: int = 80, log: Optional[Callable[[str], None]] = None,
                 cards: Optional[Dict[str, Dict]] = None, metrics: Any = None,
                 clip_dirs: Optional[Dict[str, str]] = None) -> None:
        host, port = parse_address(address)
        check_token(token)
        if not is_loopback(host) and not token:
            raise UserError(f"--serve on {host} is reachable from other machines: give --token T "
                            f"(or serve on 127.0.0.1)")
        self.stats, self.token, self.title, self.log = stats, token, redact(title), log
        self.max_clients, self.quality = max_clients, jpeg_quality
        self.several = isinstance(stats, RunStats)
        cameras: List[Any] = list(stats.cameras) if self.several else [None]
        self.pictures: Dict[Any, Picture] = {camera: Picture(max_clients) for camera in cameras}
        self.cards = dict(cards or {})
        self.clip_dirs = {str(camera): str(directory) for camera, directory in (clip_dirs or {}).items()}
        self.clip_readers = threading.BoundedSemaphore(max_clients)
        if metrics is None:
            from edgecnn.runtime.metrics import RunMetrics

            metrics = RunMetrics(stats)
        self.metrics = metrics
        self.query = f"?token={quote(token)}" if token else ""
        self.closed = False
        try:
            clip_workers = max_clients if self.clip_dirs else 0
            self.server = _Server((host, port), _Handler,
                                  workers=max_clients * len(cameras) + clip_workers + PAGE_WORKERS, log=log)
        except OSError as exc:
            raise UserError(f"--serve {address}: cannot listen ({exc.strerror or exc})") from None
        if is_loopback(host):  # the port is known once bound (":0" picks one)
            self.server.allowed_hosts = set(loopback_hosts(self.server.server_address[1]))
        self.server.view = self
        self.server.start()

    def route(self, path: str) -> Optional[Tuple[str, Any]]:
        """(what a path asks for, its camera), or None for a path this view does not serve."""
        if path in HEALTH_PATHS:
            return path, None
        if path in ("/", "/index.html"):
            return "page", None
        if path == "/stats.json":
            return "stats", None
        if self.clip_dirs and path == "/clips":
            return "clips", None
        if self.clip_dirs and path.startswith("/clips/"):  # the name is checked once the token is
            return "clip", unquote(path[len("/clips/"):])
        if not self.several:
            return ("stream", None) if path == "/stream.mjpg" else None
        parts = path.split("/")
        if len(parts) < 3 or parts[:2] != ["", "camera"] or unquote(parts[2]) not in self.pictures:
            return None
        camera = unquote(parts[2])
        rest = "/".join(parts[3:])
        return {"": ("camera", camera), "stream.mjpg": ("stream", camera),
                "series.json": ("series", camera)}.get(rest) if len(parts) <= 4 else None

    @property
    def watchers(self) -> int:
        """Video viewers connected now, over every camera."""
        return sum(picture.watchers for picture in self.pictures.values())

    @property
    def url(self) -> str:
        return server_url(self.server.server_address) + self.query

    def write(self, image, result) -> None:
        picture = self.pictures.get(getattr(result, "camera", None) if self.several else None)
        if picture is None or not picture.wanted():
            return
        ok, encoded = cv2.imencode(".jpg", annotate(image, result), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if ok:
            picture.put(encoded.tobytes())

    def close(self, completed: bool = True) -> None:
        self.closed = True
        for picture in self.pictures.values():
            with picture.condition:
                picture.condition.notify_all()
        self.server.close()
        if self.log is not None:
            counts = self.server.counts()
            self.log(f"web view: {counts['requests']} requests; client resets {counts['resets']}, timed out "
                     f"{counts['timeouts']}, refused {counts['refused'] + counts['oversized']}, wrong host "
                     f"{counts['forbidden']}")

    @property
    def public_url(self) -> str:
        """The URL to print: the token is a credential and is never echoed."""
        return self.url.split("?token=")[0] + ("?token=<your --token>" if self.token else "")


def _open(values: dict, context: SinkContext) -> WebView:
    view = WebView(values["serve"], context.stats, values.get("token"), title=context.source_name, log=context.log,
                   cards=context.cards, metrics=context.metrics, clip_dirs=context.clip_dirs)
    context.log(f"web view: {view.public_url}")
    return view


def _check(values: dict) -> None:
    if values.get("token") is not None and not values.get("serve"):
        raise UserError("--token is for --serve")
    check_token(values.get("token"))


SINK = SinkType(
    name="webview",
    options={"serve": dict(default=None, metavar="HOST:PORT", help="web view with live video and stats "
                           "(host defaults to 127.0.0.1)"),
             "token": dict(default=None, help="token required by the web view (needed off loopback)")},
    opener=_open,
    checker=_check,
    scope="run",
)
