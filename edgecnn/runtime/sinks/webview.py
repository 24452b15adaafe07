"""`--serve HOST:PORT`: a small web view of a running stream, served by
edgecnn.runtime.http_server (standard library only: nothing to install on the device;
bounded threads, timeouts and request sizes, so it can be left running).

    /             an HTML page: the live annotated video and live statistics
    /stream.mjpg  the annotated frames as an MJPEG stream (multipart/x-mixed-replace)
    /stats.json   FPS, frame-age and inference percentiles, drops (source and sinks), the last
                  result's objects, and the web view's own client counts ("web")

Binds loopback by default, and then answers only requests whose Host header names
the loopback address (DNS rebinding gets 403). Any other address needs a token of at
least MIN_TOKEN_LENGTH characters (given as ?token=T or an "Authorization: Bearer T"
header) because the page shows the camera to whoever connects. Every other path is
404; at most `max_clients` video viewers at once (503 beyond), and frames are
JPEG-encoded only while someone watches.
"""
from __future__ import annotations

import hmac
import html
import ipaddress
import json
import threading
from typing import Callable, Optional, Tuple
from urllib.parse import parse_qs, quote, urlsplit

import cv2

from edgecnn.core.errors import UserError
from edgecnn.core.redact import redact
from edgecnn.runtime.annotate import annotate
from edgecnn.runtime.http_server import BoundedHTTPServer, RequestHandler
from edgecnn.runtime.sinks import Sink, SinkContext, SinkType
from edgecnn.runtime.stats import StreamStats

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgecnn: {title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; background: #111; color: #eee; }}
main {{ display: flex; gap: 1.5em; flex-wrap: wrap; }}
img {{ max-width: 100%; border: 1px solid #444; }}
table {{ border-collapse: collapse; }} td {{ padding: 2px 10px; }} td:first-child {{ color: #aaa; }}
</style></head>
<body><h1>edgecnn run: {title}</h1>
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


def parse_address(text: str) -> Tuple[str, int]:
    """"HOST:PORT", ":PORT" or "PORT" (host defaults to 127.0.0.1); IPv6 as [::1]:PORT."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"--serve takes HOST:PORT or PORT, got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


MIN_TOKEN_LENGTH = 16
PAGE_WORKERS = 4  # worker threads beyond one per video viewer: the page and its stats polls


def check_token(token: Optional[str]) -> None:
    """A token guards the camera: long enough not to be guessed, and without blanks
    (it travels in URLs and headers, where they do not survive)."""
    if token is None:
        return
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() or not c.isprintable() for c in token):
        raise UserError(f"--token needs at least {MIN_TOKEN_LENGTH} characters and no blanks "
                        f"(e.g. from `openssl rand -hex 16`)")


def loopback_hosts(port: int):
    """What a browser sends in the Host header for a view on loopback at `port`."""
    names = ("localhost", "127.0.0.1", "[::1]")
    return [f"{name}:{port}" for name in names] + (list(names) if port == 80 else [])


class _Handler(RequestHandler):
    server: "_Server"

    def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

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
        if parts.path not in ("/", "/index.html", "/stream.mjpg", "/stats.json"):
            self._send(404, b"not found\n")
            return
        if not self._authorised(parse_qs(parts.query)):
            self._send(401, b"a valid token is required (?token=...)\n")
            return
        if parts.path == "/stats.json":
            snapshot = {**view.stats.snapshot(), "web": self.server.counts()}
            self._send(200, json.dumps(snapshot).encode(), "application/json")
        elif parts.path == "/stream.mjpg":
            self._stream()
        else:
            query = f"?token={quote(view.token)}" if view.token else ""
            page = PAGE.format(title=html.escape(view.title), query=html.escape(query),
                               query_json=json.dumps(query).replace("<", "\\u003c"))
            self._send(200, page.encode(), "text/html; charset=utf-8")

    def _stream(self) -> None:
        view = self.server.view
        if not view.viewers.acquire(blocking=False):
            self._send(503, f"at most {view.max_clients} viewers at once\n".encode())
            return
        with view.condition:
            view.watchers += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.flush()  # the viewer sees the stream open before the first frame
            seen = -1
            while True:
                with view.condition:
                    fresh = view.condition.wait_for(lambda: view.sequence != seen or view.closed, timeout=1.0)
                    jpeg, seen = view.jpeg, view.sequence
                if view.closed or (not fresh and self.client_left()):  # between frames: still watching?
                    break
                if fresh and jpeg is not None:
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                    self.wfile.flush()
        except OSError as exc:  # the viewer went away or stopped reading
            self.client_failed(exc)
        finally:
            with view.condition:
                view.watchers -= 1
            view.viewers.release()


class _Server(BoundedHTTPServer):
    view: "WebView"


class WebView(Sink):
    """A sink serving the page, the MJPEG stream and the stats while the run goes on."""

    def __init__(self, address: str, stats: StreamStats, token: Optional[str] = None, title: str = "",
                 max_clients: int = 4, jpeg_quality: int = 80, log: Optional[Callable[[str], None]] = None) -> None:
        host, port = parse_address(address)
        check_token(token)
        if not is_loopback(host) and not token:
            raise UserError(f"--serve on {host} is reachable from other machines: give --token T "
                            f"(or serve on 127.0.0.1)")
        self.stats, self.token, self.title, self.log = stats, token, redact(title), log
        self.max_clients, self.quality = max_clients, jpeg_quality
        self.viewers = threading.BoundedSemaphore(max_clients)
        self.condition = threading.Condition()
        self.jpeg: Optional[bytes] = None
        self.sequence = 0
        self.watchers = 0
        self.closed = False
        try:
            self.server = _Server((host, port), _Handler, workers=max_clients + PAGE_WORKERS, log=log)
        except OSError as exc:
            raise UserError(f"--serve {address}: cannot listen ({exc.strerror or exc})") from None
        if is_loopback(host):  # the port is known once bound (":0" picks one)
            self.server.allowed_hosts = set(loopback_hosts(self.server.server_address[1]))
        self.server.view = self
        self.server.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/" + (f"?token={quote(self.token)}" if self.token else "")

    def write(self, image, result) -> None:
        with self.condition:
            watched = self.watchers > 0 or self.jpeg is None
        if not watched:
            return
        ok, encoded = cv2.imencode(".jpg", annotate(image, result), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if ok:
            with self.condition:
                self.jpeg, self.sequence = encoded.tobytes(), self.sequence + 1
                self.condition.notify_all()

    def close(self, completed: bool = True) -> None:
        with self.condition:
            self.closed = True
            self.condition.notify_all()
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
    view = WebView(values["serve"], context.stats, values.get("token"), title=context.source_name, log=context.log)
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
