"""Where results go, one frame at a time: JSON lines, an annotated video file, a window,
or a callback (the web view is edgecnn.runtime.webview). Each sink has
write(image, result) and close(completed); a sink that wants the run to end (a closed
window) sets `stop`.
"""
from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Callable, Optional

import cv2

from edgecnn.errors import UserError
from edgecnn.runtime.annotate import annotate

VIDEO_CODECS = {".mp4": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


class Sink:
    stop = False

    def write(self, image, result) -> None:
        raise NotImplementedError

    def close(self, completed: bool = True) -> None:
        pass


class JsonLinesSink(Sink):
    """One JSON record per frame (result.to_dict()), flushed per line so a reader
    (a robot process, `tail -f`) sees each frame as it happens. "-" is stdout."""

    def __init__(self, target: str) -> None:
        self.target = target
        if target == "-":
            self.handle, self._owned = sys.stdout, False
        else:
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self.handle, self._owned = open(target, "w", encoding="utf-8"), True
            except OSError as exc:
                raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None

    def write(self, image, result) -> None:
        self.handle.write(json.dumps(result.to_dict()) + "\n")
        self.handle.flush()

    def close(self, completed: bool = True) -> None:
        if self._owned:
            self.handle.close()


class VideoSink(Sink):
    """Annotated frames into a video file, written beside the target and renamed over
    it only when the run completes: a crash never leaves a half-written video."""

    def __init__(self, path: str, fps: float = 30.0) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise UserError(f"--save {path}: use a {', '.join(VIDEO_CODECS)} file")
        self.partial = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        self.fps = fps if fps and fps > 0 else 30.0
        self.fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[suffix])
        self.writer: Optional[cv2.VideoWriter] = None
        self.frames = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None

    def write(self, image, result) -> None:
        canvas = annotate(image, result)
        if self.writer is None:
            height, width = canvas.shape[:2]
            self.writer = cv2.VideoWriter(str(self.partial), self.fourcc, self.fps, (width, height))
            if not self.writer.isOpened():
                raise UserError(f"cannot write video {self.path} (no encoder for {self.path.suffix} here)")
            self.size = (width, height)
        if (canvas.shape[1], canvas.shape[0]) != self.size:  # sources whose frame size changes
            canvas = cv2.resize(canvas, self.size)
        self.writer.write(canvas)
        self.frames += 1

    def close(self, completed: bool = True) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.partial.exists():
            if completed and self.frames:
                os.replace(self.partial, self.path)
            else:
                self.partial.unlink()


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


class CallbackSink(Sink):
    """Calls fn(image, result) per frame: the hook for a robot program. Returning
    False (not None) from fn ends the run."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def write(self, image, result) -> None:
        if self.fn(image, result) is False:
            self.stop = True
