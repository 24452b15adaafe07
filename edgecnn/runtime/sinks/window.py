"""An OpenCV window on the local display; q or Esc ends the run."""
from __future__ import annotations

import os
import socket
import sys

import cv2

from edgecnn.core.errors import UserError
from edgecnn.core.redact import redact
from edgecnn.runtime.annotate import annotate
from edgecnn.runtime.sinks import Sink, SinkType


def display_available() -> bool:
    """Whether a window can open. Checked before OpenCV tries: its Qt backend aborts the
    whole process (no exception) when the display named in DISPLAY cannot be reached."""
    if not sys.platform.startswith("linux"):
        return True
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if wayland and os.path.exists(os.path.join(os.environ.get("XDG_RUNTIME_DIR", ""), wayland)):
        return True
    display = os.environ.get("DISPLAY", "")
    host, _, number = display.rpartition(":")
    number = number.split(".")[0]
    if not number.isdigit():
        return False
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as connection:
                connection.settimeout(1.0)
                connection.connect(f"/tmp/.X11-unix/X{number}")
        else:  # an X server over TCP (ssh forwarding uses localhost:10 and up)
            socket.create_connection((host, 6000 + int(number)), timeout=1.0).close()
    except OSError:
        return False
    return True


class WindowSink(Sink):
    """An OpenCV window; q or Esc ends the run."""

    def __init__(self, title: str = "edgecnn") -> None:
        if not display_available():
            raise UserError("--show needs a display (no reachable DISPLAY or WAYLAND_DISPLAY); use --serve or --save")
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:  # opencv-python-headless, or a display that cannot be opened
            message = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no GUI support"
            raise UserError(f"--show: OpenCV cannot open a window here ({message[:120]}); "
                            f"use --serve or --save") from None

    def write(self, image, result) -> None:
        cv2.imshow(self.title, annotate(image, result))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop = True

    def close(self, completed: bool = True) -> None:
        cv2.destroyWindow(self.title)


SINK = SinkType(
    name="window",
    options={"show": dict(action="store_true", help="show a window (needs a display)")},
    opener=lambda values, context: WindowSink(f"edgecnn: {redact(context.source_name)}"),  # a title is shown
)
