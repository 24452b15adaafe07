"""A network stream through OpenCV's FFmpeg: RTSP cameras, HTTP MJPEG, RTMP, UDP/TCP.
The URL's own query keys stay in the URL (they belong to the server); edgecnn's options
(`transport`, `timeout`) are taken out of it."""
from __future__ import annotations

import os
import threading
from typing import Any, Dict

import cv2

from edgecnn.core.errors import UserError
from edgecnn.core.redact import redact
from edgecnn.core.descriptors import native_stderr
from edgecnn.runtime.sources import SourceContext, SourceOption, SourceType
from edgecnn.runtime.sources._live import LiveSource

DEFAULT_TIMEOUT = 10.0  # seconds without a frame before a stream counts as lost and is reopened
SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
# OpenCV reads FFmpeg's options from one process-wide variable: opens are serialised so
# that two cameras with different transports each open with their own.
_FFMPEG_OPTIONS = threading.Lock()


def _parse_transport(text: str) -> str:
    if text not in ("tcp", "udp"):
        raise ValueError(f"expected tcp or udp, got {text!r}")
    return text


def _parse_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"needs a timeout > 0, got {text}")
    return value


def open_stream(url: str, options: Dict[str, Any]) -> cv2.VideoCapture:
    milliseconds = int(options.get("timeout", DEFAULT_TIMEOUT) * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds, cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds]
    with _FFMPEG_OPTIONS:
        before = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
        if "transport" in options:
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{options['transport']}"
        try:
            with native_stderr() as captured:
                capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
                captured.forward = capture.isOpened()
        finally:
            if "transport" in options:
                if before is None:
                    os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
                else:
                    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = before
    if not capture.isOpened():
        capture.release()
        raise UserError(f"cannot open {redact(url)}")
    return capture


def opener(target: str, options: Dict[str, Any], context: SourceContext) -> LiveSource:
    return LiveSource(redact(target), lambda: open_stream(target, options), log=context.log)


SOURCE = SourceType(name="stream", opener=opener, schemes=SCHEMES, url_query=True,
                    options={"transport": SourceOption("RTSP over tcp (through firewalls, no lost packets) or udp",
                                                       _parse_transport),
                             "timeout": SourceOption(f"seconds to wait for the stream to open or a frame to arrive "
                                                     f"before it counts as lost and is reopened (default "
                                                     f"{DEFAULT_TIMEOUT:g})", _parse_timeout)},
                    summary="a network stream (RTSP, HTTP MJPEG, RTMP, UDP, TCP)", example="rtsp://...")
