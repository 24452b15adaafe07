"""A video file: every frame in order, decoded ahead in a thread; or, read in real
time (`?realtime=1`, `?fps=N` or `--realtime`), paced at its frame rate like a camera
that keeps only the newest frame. `?loop=1` starts it over at the end (soak tests,
demos, benchmarks that need a camera-like source that never ends)."""
from __future__ import annotations

import os
from typing import Any, Dict, Iterator

import cv2

from edgecnn.runtime.sources import Source, SourceContext, SourceOption, SourceType, parse_fps, parse_switch
from edgecnn.runtime.sources._files import ReadAheadSource, open_video_file
from edgecnn.runtime.sources._live import LiveSource

FILE_OPTIONS = {"realtime": SourceOption("1: paced at the file's frame rate, keeping only the newest frame "
                                         "(like a camera)", parse_switch),
                "fps": SourceOption("pace at this rate instead (implies realtime)", parse_fps),
                "loop": SourceOption("1: start over at the end, forever", parse_switch)}


class LoopingCapture:
    """A video file that starts over at its end: read() never runs out."""

    def __init__(self, path: str, decoder_threads: int = 0) -> None:
        self.path, self.threads = path, decoder_threads
        self.capture = open_video_file(path, decoder_threads)

    def read(self):
        ok, image = self.capture.read()
        if not ok:
            self.capture.release()
            self.capture = open_video_file(self.path, self.threads)
            ok, image = self.capture.read()
        return ok, image

    def get(self, prop):
        return self.capture.get(prop)

    def release(self) -> None:
        self.capture.release()


class VideoFileSource(ReadAheadSource):
    """Every frame of a video file in order, decoded ahead."""

    def __init__(self, path: str, ahead: int = 4, loop: bool = False) -> None:
        self.path = path
        self._capture = LoopingCapture(path, 1) if loop else open_video_file(path, decoder_threads=1)
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        super().__init__(path, ahead)

    def _images(self) -> Iterator[tuple]:
        index = 0
        try:
            while True:
                ok, image = self._capture.read()
                if not ok:
                    return
                yield index, image
                index += 1
        finally:
            self._capture.release()

    def _release(self) -> None:
        self._capture.release()

    def _media_time(self, index: int):
        return index / self.fps if self.fps > 0 else None


def opener(target: str, options: Dict[str, Any], context: SourceContext) -> Source:
    loop = options.get("loop", False)
    if not (options.get("realtime", context.realtime) or "fps" in options):
        return VideoFileSource(target, loop=loop)
    fps = options.get("fps")
    if fps is None:
        probe = open_video_file(target)
        fps = probe.get(cv2.CAP_PROP_FPS) or 30.0
        probe.release()
    make = (lambda: LoopingCapture(target)) if loop else (lambda: open_video_file(target))
    return LiveSource(target, make, finite=not loop, period=1.0 / fps, log=context.log)


def _is_file(text: str) -> bool:
    return os.path.isfile(text.partition("?")[0] if "=" in text.rpartition("?")[2] else text)


SOURCE = SourceType(name="video", opener=opener, claims=_is_file, priority=90, options=FILE_OPTIONS, live=False,
                    summary="a video file", example="video.mp4")
