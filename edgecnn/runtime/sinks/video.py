"""An annotated video file, written beside the target and renamed over it only when the
run completes: a crash never leaves a half-written video."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import cv2

from edgecnn.core.errors import UserError
from edgecnn.runtime.annotate import annotate
from edgecnn.runtime.sinks import Sink, SinkType

VIDEO_CODECS = {".mp4": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


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


SINK = SinkType(
    name="video",
    records_the_run=True,
    options={"save": dict(default=None, metavar="VIDEO", help="write the annotated video (.mp4, .avi, ...)")},
    opener=lambda values, context: VideoSink(values["save"], context.fps),
    queue_size=64,  # a file should keep every frame: room for a slow encoder to catch up (~2 s at 30 FPS)
)
