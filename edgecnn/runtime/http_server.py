"""A small HTTP/1.0 server that is safe to leave running where anyone may connect: the
web view's (edgecnn.runtime.sinks.webview) and the health server's
(edgecnn.runtime.health).

The standard library's ThreadingHTTPServer starts a thread per connection, waits for
a request line forever and prints a traceback whenever a client resets. Here:

- one thread reads every connection's request line and headers without blocking
  (selectors); a connection that has not sent them within HEAD_TIMEOUT seconds is
  closed, so half-open or trickling clients hold a socket for a few seconds and never
  a thread; beyond MAX_PENDING such connections the oldest is closed;
- a complete request goes to a fixed pool of worker threads through a queue of
  QUEUE_SIZE; when that is full the client gets 503 at once;
- the request line and headers may take MAX_HEAD bytes (431 beyond); a worker's
  writes time out after WRITE_TIMEOUT seconds (a viewer that stopped reading);
- with `allowed_hosts` (a server bound to loopback), a request whose Host header is
  not one of them gets 403: a web page whose name was rebound to 127.0.0.1 (DNS
  rebinding) cannot read the view;
- a client that resets, closes early or times out is counted (`counts()`), never
  printed;
- a file (`send_file`) goes out whole or as the one byte range asked for (206), in
  chunks under the write timeout and an overall deadline, so a reader that trickles
  frees its worker too.
"""
from __future__ import annotations

import collections
import io
import ipaddress
import os
import queue
import select
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from edgecnn.core.errors import UserError

HEAD_TIMEOUT = 5.0  # seconds a connection has to send its request line and headers
WRITE_TIMEOUT = 10.0  # seconds a write to a client may stall before it is dropped
MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_PENDING = 256  # connections still sending their headers at once
QUEUE_SIZE = 32  # complete requests waiting for a worker
FILE_CHUNK = 64 * 1024  # bytes of a file written at once
# bytes per second a file's reader must average (beyond one write timeout) before its
# worker gives up on it: a 15 s H.264 clip of 640x480 (2.5 MB) may take 80 s
MIN_FILE_RATE = 32 * 1024
POLL = 0.2  # seconds between checks for expired connections and shutdown
COUNTS = ("connections", "requests", "resets", "closed", "timeouts", "refused", "oversized", "forbidden",
          "errors")


def parse_address(text: str, option: str = "--serve") -> Tuple[str, int]:
    """"HOST:PORT", ":PORT" or "PORT" (host defaults to 127.0.0.1); IPv6 as [::1]:PORT."""
    host, _, port = str(text).rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"{option} takes HOST:PORT or PORT, got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_hosts(port: int) -> List[str]:
    """What a browser sends in the Host header for a server on loopback at `port`."""
    names = ("localhost", "127.0.0.1", "[::1]")
    return [f"{name}:{port}" for name in names] + (list(names) if port == 80 else [])


def server_url(address: Tuple) -> str:
    """http://HOST:PORT/ of a bound address (IPv6 in brackets)."""
    host, port = address[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


@dataclass
class Connection:
    """An accepted client with its request line and headers read."""

    sock: socket.socket
    address: Tuple
    head: bytes


class RequestHandler(BaseHTTPRequestHandler):
    """BaseHTTPRequestHandler on a request already read: rfile holds its head, the
    connection is closed after one response (HTTP/1.0), and the Host header is checked."""

    server: "BoundedHTTPServer"
    server_version = "edgecnn"
    client_gone = False  # the client's socket failed and was counted: nothing more goes to it

    def setup(self) -> None:
        self.connection = self.request.sock
        self.rfile = io.BytesIO(self.request.head)
        self.wfile = self.connection.makefile("wb")

    def finish(self) -> None:
        try:
            if not self.client_gone:
                self.wfile.flush()
        finally:
            try:
                self.wfile.close()
            except OSError:  # what was still buffered for a client that went away
                pass

    def client_left(self) -> bool:
        """Whether the client closed or reset its connection, checked without reading
        what it sent: for a response that waits (a video stream between frames), so a
        viewer that went away frees its worker without a write to notice it."""
        try:
            if not select.select([self.connection], [], [], 0)[0]:
                return False
            if self.connection.recv(1, socket.MSG_PEEK) == b"":
                self.client_gone = self.close_connection = True
                return True
        except OSError as exc:
            self.client_failed(exc)
            return True
        return False

    def client_failed(self, exc: OSError) -> None:
        """Count a client's reset, broken pipe or stalled read, once."""
        self.server.count(client_error_kind(exc))
        self.client_gone = self.close_connection = True

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        allowed = self.server.allowed_hosts
        if allowed is not None and self.headers.get("Host", "").strip().lower() not in allowed:
            self.server.count("forbidden")
            self.send_error(403, "Forbidden", "this view answers only to its loopback address in the Host header")
            return False
        return True

    def send_body(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        """A whole response: never cached, never sniffed as another type."""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def send_file(self, path, content_type: str) -> None:
        """A file as the response: whole (200), or the single byte range its Range header
        asks for (206 Partial Content, as a browser seeking in a video asks), 416 for a
        range that starts past the end. Several ranges at once get the whole file (a
        server may ignore Range; multipart answers are not worth their code here), as
        does a Range header that does not parse. Written in chunks: each write is bounded
        by the server's write timeout, the whole by MIN_FILE_RATE, so a reader that
        stops or trickles frees its worker (counted as a timeout)."""
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            kind, first, last = byte_range(self.headers.get("Range"), size)
            if kind == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            length = last - first + 1 if size else 0
            self.send_response(206 if kind == "partial" else 200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            if kind == "partial":
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            deadline = time.monotonic() + self.server.write_timeout + length / MIN_FILE_RATE
            file.seek(first)
            left = length
            try:
                while left > 0:
                    if time.monotonic() > deadline:
                        self.server.count("timeouts")
                        self.client_gone = self.close_connection = True
                        return
                    chunk = file.read(min(FILE_CHUNK, left))
                    if not chunk:  # the file shrank under us (retention deleted it): end the response short
                        self.close_connection = True
                        return
                    self.wfile.write(chunk)
                    left -= len(chunk)
            except OSError as exc:
                self.client_failed(exc)

    def log_message(self, format, *args) -> None:  # quiet: the run's output is for results
        pass


def byte_range(header: Optional[str], size: int) -> Tuple[str, int, int]:
    """A Range header against a file of `size` bytes -> ("whole", 0, size - 1),
    ("partial", first, last) or ("unsatisfiable", 0, 0). Only one range of bytes is
    honoured: `bytes=A-B`, `bytes=A-` or `bytes=-N` (the last N); anything else (another
    unit, several ranges, A > B, not numbers) is ignored, as RFC 9110 allows."""
    whole = ("whole", 0, size - 1)
    if not header:
        return whole
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return whole
    start, dash, end = spec.strip().partition("-")
    start, end = start.strip(), end.strip()
    if not dash or not (start or end) or any(part and not (part.isascii() and part.isdigit())
                                             for part in (start, end)):
        return whole

    def number(digits: str) -> int:  # past any file size (and short of int()'s digit limit)
        return int(digits) if len(digits) <= 30 else 10 ** 30

    if not start:  # the last `end` bytes
        count = number(end)
        return ("partial", max(0, size - count), size - 1) if count > 0 and size > 0 else ("unsatisfiable", 0, 0)
    first = number(start)
    if end and number(end) < first:
        return whole
    if first >= size:
        return ("unsatisfiable", 0, 0)
    return ("partial", first, min(number(end) if end else size - 1, size - 1))


def head_end(buffer: bytes) -> int:
    """Where a request's headers end (the blank line's end), or -1 while they have not."""
    for marker in (b"\r\n\r\n", b"\n\n"):
        found = buffer.find(marker)
        if found >= 0:
            return found + len(marker)
    return -1


def client_error_kind(exc: BaseException) -> str:
    """The count a client's socket error goes to."""
    return "timeouts" if isinstance(exc, (TimeoutError, socket.timeout)) else "resets"


class BoundedHTTPServer:
    """Serves `handler` (a RequestHandler subclass) on `address` with `workers` threads,
    from `start()` on (the address is bound at once: port 0 picks one, then known)."""

    def __init__(self, address: Tuple[str, int], handler: type, *, workers: int,
                 allowed_hosts: Optional[Iterable[str]] = None, head_timeout: float = HEAD_TIMEOUT,
                 write_timeout: float = WRITE_TIMEOUT, log: Optional[Callable[[str], None]] = None) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.socket = socket.create_server(address, family=family, backlog=128)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self.handler, self.head_timeout, self.write_timeout = handler, head_timeout, write_timeout
        self.allowed_hosts = None if allowed_hosts is None else {host.lower() for host in allowed_hosts}
        self.log = log
        self._counts: Dict[str, int] = dict.fromkeys(COUNTS, 0)
        self._lock = threading.Lock()
        self._jobs: "queue.Queue[Optional[Connection]]" = queue.Queue(QUEUE_SIZE)
        self._closing = threading.Event()
        self._workers = [threading.Thread(target=self._work, name=f"web view worker {i}", daemon=True)
                         for i in range(workers)]
        self._reader = threading.Thread(target=self._read_requests, name="web view", daemon=True)

    def start(self) -> None:
        for thread in (*self._workers, self._reader):
            thread.start()

    def count(self, kind: str, number: int = 1) -> None:
        with self._lock:
            self._counts[kind] += number

    def counts(self) -> Dict[str, int]:
        """Connections accepted, requests handled, and what went wrong with clients."""
        with self._lock:
            return dict(self._counts)

    def close(self) -> None:
        self._closing.set()
        if self._reader.is_alive():
            self._reader.join(timeout=5)
        for _ in self._workers:
            try:
                self._jobs.put(None, timeout=1)
            except queue.Full:
                break
        self.socket.close()

    # ------------------------------------------------------------ the reading thread

    def _read_requests(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.socket, selectors.EVENT_READ)
        pending: "collections.OrderedDict[socket.socket, list]" = collections.OrderedDict()  # sock -> [since, head]
        try:
            while not self._closing.is_set():
                for key, _ in selector.select(timeout=POLL):
                    if key.fileobj is self.socket:
                        self._accept(selector, pending)
                    else:
                        self._receive(selector, pending, key.fileobj, key.data)
                self._expire(selector, pending, time.monotonic() - self.head_timeout)
        finally:
            for sock in pending:
                sock.close()
            selector.close()

    def _accept(self, selector, pending) -> None:
        while True:
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # the client reset before it was accepted, or out of descriptors
                self.count(client_error_kind(exc))
                return
            self.count("connections")
            if len(pending) >= MAX_PENDING:  # the oldest is the likeliest to be idle on purpose
                oldest = next(iter(pending))
                self._drop(selector, pending, oldest, "refused")
            sock.setblocking(False)
            pending[sock] = [time.monotonic(), b""]
            selector.register(sock, selectors.EVENT_READ, address)

    def _receive(self, selector, pending, sock, address) -> None:
        try:
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(selector, pending, sock, client_error_kind(exc))
            return
        if not data:
            self._drop(selector, pending, sock, "closed")
            return
        state = pending[sock]
        state[1] += data
        end = head_end(state[1])
        if end < 0 and len(state[1]) > MAX_HEAD or end > MAX_HEAD:
            self._answer_and_drop(selector, pending, sock, b"431 Request Header Fields Too Large", "oversized")
            return
        if end < 0:
            return
        selector.unregister(sock)
        del pending[sock]
        sock.setblocking(True)
        sock.settimeout(self.write_timeout)
        try:
            self._jobs.put_nowait(Connection(sock, address, state[1][:end]))
        except queue.Full:
            sock.setblocking(False)
            self.count("refused")  # before the answer: a client that reads it finds it counted
            self._answer(sock, b"503 Service Unavailable")
            sock.close()

    def _expire(self, selector, pending, before: float) -> None:
        while pending:
            sock, (since, _) = next(iter(pending.items()))
            if since > before:
                return
            self._drop(selector, pending, sock, "timeouts")

    def _drop(self, selector, pending, sock, kind: str) -> None:
        self.count(kind)  # before the close: a client that sees its connection end finds it counted
        self._close(selector, pending, sock)

    @staticmethod
    def _close(selector, pending, sock) -> None:
        selector.unregister(sock)
        del pending[sock]
        sock.close()

    def _answer_and_drop(self, selector, pending, sock, status: bytes, kind: str) -> None:
        """Answer, then read what the client still sends (closing a socket with unread
        data resets it, and the client might lose the answer) and close. Counted before
        the answer: a client that reads it finds it counted."""
        self.count(kind)
        self._answer(sock, status)
        try:
            sock.shutdown(socket.SHUT_WR)
            for _ in range(16):
                if not sock.recv(4096):
                    break
        except OSError:
            pass
        self._close(selector, pending, sock)

    @staticmethod
    def _answer(sock: socket.socket, status: bytes) -> None:
        """A one-line answer on a non-blocking socket, where it fits at once."""
        try:
            sock.send(b"HTTP/1.0 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass

    # ------------------------------------------------------------ the workers

    def _work(self) -> None:
        while True:
            connection = self._jobs.get()
            if connection is None:
                return
            try:
                self.count("requests")
                self.handler(connection, connection.address, self)
            except OSError as exc:  # reset, broken pipe, a stalled reader's timeout
                self.count(client_error_kind(exc))
            except Exception as exc:  # a fault of the handler: one line, the server goes on
                self.count("errors")
                if self.log is not None:
                    self.log(f"web view: error answering a request: {type(exc).__name__}: {exc}"[:300])
            finally:
                try:
                    connection.sock.close()
                except OSError:
                    pass
