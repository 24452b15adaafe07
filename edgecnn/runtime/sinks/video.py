"""An annotated video file, written beside the target and renamed over it only when the
run completes: a crash never leaves a half-written video.

.mp4 is H.264 when PyAV is installed (`pip install 'edgecnn[video]'`) and .webm is VP8:
both play in browsers. Without PyAV an .mp4 is OpenCV's MPEG-4 Part 2 (mp4v), which
browsers refuse; the run says so at its start (edgecnn.runtime.video_files)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from edgecnn.core.errors import UserError
from edgecnn.runtime.annotate import annotate
from edgecnn.runtime.sinks import Sink, SinkType
from edgecnn.runtime.sources import stderr_log
from edgecnn.runtime.video_files import CODECS, PYAV_EXTRA, VideoFileWriter, open_video, pyav_installed

VIDEO_CODECS = {".mp4": "h264", ".webm": "vp8", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "mjpg"}


class VideoSink(Sink):
    """Annotated frames into a video file, written beside the target and renamed over
    it only when the run completes: a crash never leaves a half-written video."""

    def __init__(self, path: str, fps: float = 30.0, log: Callable[[str], None] = stderr_log) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise UserError(f"--save {path}: use a {', '.join(VIDEO_CODECS)} file")
        self.codec = CODECS[VIDEO_CODECS[suffix]]
        if self.codec.name == "h264" and not pyav_installed():
            self.codec = CODECS["mp4v"]
            log(f"--save {path}: writing MPEG-4 Part 2 (mp4v), which browsers do not play; "
                f"for H.264 {PYAV_EXTRA}, or save as .webm (VP8)")
        self.partial = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        self.fps = fps if fps and fps > 0 else 30.0
        self.writer: Optional[VideoFileWriter] = None
        self.frames = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None

    def write(self, image, result) -> None:
        canvas = annotate(image, result)
        try:
            if self.writer is None:
                self.writer = open_video(self.partial, self.codec, self.fps)
            self.writer.write(canvas)
        except OSError as exc:
            raise UserError(f"cannot write video {self.path}: {exc.strerror or exc}") from None
        self.frames += 1

    def close(self, completed: bool = True) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.close() if completed else writer.abort()
            except OSError as exc:
                self.partial.unlink(missing_ok=True)
                raise UserError(f"cannot write video {self.path}: {exc.strerror or exc}") from None
        if self.partial.exists():
            if completed and self.frames:
                os.replace(self.partial, self.path)
            else:
                self.partial.unlink()


SINK = SinkType(
    name="video",
    records_the_run=True,
    options={"save": dict(default=None, metavar="VIDEO",
                          help="write the annotated video (.mp4: H.264 with edgecnn[video]; .webm: VP8; .avi, ...)")},
    opener=lambda values, context: VideoSink(values["save"], context.fps, context.log),
    writes=lambda values: [values["save"]],
    queue_size=64,  # a file should keep every frame: room for a slow encoder to catch up (~2 s at 30 FPS)
)
