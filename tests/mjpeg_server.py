"""An IP camera stand-in for tests and benchmarks: an HTTP MJPEG stream of a video's
frames, looped at a fixed rate, on 127.0.0.1, that can be frozen (it keeps the
connection but sends nothing), resumed, and taken down and brought back on the same
port (a camera that reboots)."""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional

import cv2
import numpy as np


def video_frames(path: str, size=None) -> List[bytes]:
    """A video's frames as JPEG bytes (optionally resized to (width, height))."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if size is not None:
            image = cv2.resize(image, size)
        frames.append(cv2.imencode(".jpg", image)[1].tobytes())
    capture.release()
    return frames


class MjpegCamera:
    def __init__(self, frames: List[bytes], fps: float = 15.0, port: int = 0) -> None:
        self.frames, self.period = frames, 1.0 / fps
        self.frozen = threading.Event()
        self.sent = 0
        self._server: Optional[ThreadingHTTPServer] = None
        self.port = port
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> None:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                index, deadline = 0, time.perf_counter()
                try:
                    while camera._server is server:
                        if camera.frozen.is_set():
                            time.sleep(0.02)
                            deadline = time.perf_counter()
                            continue
                        data = camera.frames[index % len(camera.frames)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n")
                        self.wfile.flush()
                        camera.sent += 1
                        index += 1
                        deadline += camera.period
                        time.sleep(max(0.0, deadline - time.perf_counter()))
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.allow_reuse_address = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Taken down: the connection drops and new ones are refused."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def wait_port_free(self) -> None:
        for _ in range(100):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", self.port))
                    return
                except OSError:
                    time.sleep(0.05)


def blank_frames(count: int = 30, size=(320, 240)) -> List[bytes]:
    return [cv2.imencode(".jpg", np.full((size[1], size[0], 3), 16 * (i % 16), np.uint8))[1].tobytes()
            for i in range(count)]
