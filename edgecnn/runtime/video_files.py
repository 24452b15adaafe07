"""Video files that browsers play: H.264 in .mp4 through PyAV (libx264) when it is
installed (`pip install 'edgecnn[video]'`), else VP8 in .webm through OpenCV.

OpenCV's pip wheels carry no H.264 encoder: their .mp4 is MPEG-4 Part 2 (`mp4v`), which
Chromium refuses to play. They do carry libvpx, but OpenCV exposes none of its speed
settings, so VP8 costs several times more CPU than libx264. Measured figures, and which
files headless Chromium played: benchmarks/RESULTS.md, Event clips (benchmarks/clip_cost.py).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from edgecnn.core.errors import UserError

# libx264's preset and quality: superfast at CRF 23 kept ultrafast's PSNR in two thirds of
# its bytes for 1.4 to 1.7 times its CPU; veryfast saved another eighth of the bytes for
# 1.5 to 2 times superfast's CPU (four runs on a shared machine; benchmarks/RESULTS.md, Event clips)
H264_PRESET = "superfast"
H264_CRF = 23
# timestamps of variable-rate H.264 (frames stamped with their capture times), in ms
H264_TIME_BASE = Fraction(1, 1000)
# VP8's bitrate in bits per pixel per frame: 0.2 is about 1 Mbit/s at 640x480 15 FPS, 1 dB
# below H.264 superfast's PSNR at three quarters of its bitrate, for about 0.6x the CPU of
# OpenCV's default VP8 (6 Mbit/s)
VP8_BITS_PER_PIXEL = 0.2


@dataclass(frozen=True)
class Codec:
    name: str
    suffix: str  # the container it is written in
    browser_playable: bool
    description: str


CODECS = {codec.name: codec for codec in (
    Codec("h264", ".mp4", True, "H.264 (libx264 through PyAV)"),
    Codec("vp8", ".webm", True, "VP8 (libvpx through OpenCV)"),
    Codec("mp4v", ".mp4", False, "MPEG-4 Part 2 (OpenCV's mp4v)"),
    Codec("mjpg", ".avi", False, "Motion JPEG (OpenCV)"),
)}
OPENCV_FOURCC = {"vp8": "VP80", "mp4v": "mp4v", "mjpg": "MJPG"}
PYAV_EXTRA = "pip install 'edgecnn[video]'"


def pyav_installed() -> bool:
    return importlib.util.find_spec("av") is not None


def browser_codec(requested: str = "auto") -> Codec:
    """The codec for files a browser should play: "auto" is H.264 when PyAV is installed,
    else VP8; "h264" without PyAV is a UserError naming the extra to install."""
    if requested == "auto":
        return CODECS["h264" if pyav_installed() else "vp8"]
    if requested not in ("h264", "vp8"):
        raise UserError(f"unknown clip codec {requested!r}; known: auto, h264, vp8")
    if requested == "h264" and not pyav_installed():
        raise UserError(f"H.264 needs PyAV: {PYAV_EXTRA} (or use vp8)")
    return CODECS[requested]


class VideoFileWriter:
    """Frames (BGR uint8) into one video file; the frame size is the first frame's.
    `close()` finishes the file and raises OSError when it could not be written whole;
    `abort()` releases everything without checks. `reports_write_errors` is False for
    writers that fail silently (OpenCV): the caller then checks the file (count_frames)."""

    reports_write_errors = True

    def __init__(self, path: Union[str, Path], codec: Codec, fps: float) -> None:
        self.path, self.codec, self.fps = Path(path), codec, fps
        self.frames = 0

    def write(self, image: np.ndarray, timestamp: Optional[float] = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class H264Writer(VideoFileWriter):
    """H.264 (yuv420p, the profile every browser decodes) in a fragmented .mp4: the
    sample index is written with each fragment (one per keyframe) instead of kept in
    memory until the file closes, which grew by 87 bytes a frame, about 113 MB a day at
    15 FPS, under a `--save` left running; a browser plays it as it arrives.
    Frames given timestamps keep them (a gap in capture stays a gap in playback); the
    others follow at `fps`. Odd widths or heights lose their last column or row:
    4:2:0 chroma needs even sizes."""

    def __init__(self, path: Union[str, Path], codec: Codec, fps: float, threads: Optional[int] = None) -> None:
        super().__init__(path, codec, fps)
        import av

        self._av = av
        self.threads = threads
        self.container = av.open(str(self.path), mode="w", format="mp4", options={"movflags": "+frag_keyframe+empty_moov+default_base_moof"})
        self.stream = None
        self.first_timestamp: Optional[float] = None
        self.last_pts = -1

    def _open_stream(self, width: int, height: int) -> None:
        stream = self.container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": H264_PRESET, "crf": str(H264_CRF)}
        stream.codec_context.time_base = H264_TIME_BASE
        if self.threads:
            stream.codec_context.thread_count = self.threads
        self.stream = stream
        # the header now: the file exists from the first frame, not after the encoder's lookahead
        self.container.start_encoding()

    def write(self, image: np.ndarray, timestamp: Optional[float] = None) -> None:
        if self.stream is None:
            self._open_stream(image.shape[1] // 2 * 2, image.shape[0] // 2 * 2)
        width, height = self.stream.width, self.stream.height
        if 0 <= image.shape[1] - width <= 1 and 0 <= image.shape[0] - height <= 1:
            image = np.ascontiguousarray(image[:height, :width])
        else:  # sources whose frame size changes
            image = cv2.resize(image, (width, height))
        frame = self._av.VideoFrame.from_ndarray(image, format="bgr24" if image.ndim == 3 else "gray")
        if timestamp is None:
            seconds = self.frames / self.fps
        else:
            self.first_timestamp = timestamp if self.first_timestamp is None else self.first_timestamp
            seconds = timestamp - self.first_timestamp
        self.last_pts = max(round(seconds / H264_TIME_BASE), self.last_pts + 1)  # strictly increasing
        frame.pts, frame.time_base = self.last_pts, H264_TIME_BASE
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        try:
            if self.stream is not None:
                self.container.mux(self.stream.encode(None))  # the frames the encoder still holds
        finally:
            self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # a file that failed to write fails again to close: it is deleted anyway
            pass


class OpenCVWriter(VideoFileWriter):
    """OpenCV's FFmpeg writer at a constant `fps` (timestamps are ignored). It reports no
    write errors (a full disk leaves a short file and a warning on stderr)."""

    reports_write_errors = False

    def __init__(self, path: Union[str, Path], codec: Codec, fps: float) -> None:
        super().__init__(path, codec, fps)
        self.writer: Optional[cv2.VideoWriter] = None
        self.size = (0, 0)

    def _open(self, width: int, height: int) -> None:
        fourcc = cv2.VideoWriter_fourcc(*OPENCV_FOURCC[self.codec.name])
        parameters = []
        bitrate_property = getattr(cv2, "VIDEOWRITER_PROP_BITRATE", None)  # absent from older OpenCV
        if self.codec.name == "vp8" and bitrate_property is not None:
            parameters = [bitrate_property, round(VP8_BITS_PER_PIXEL * width * height * self.fps)]
        self.writer = cv2.VideoWriter(str(self.path), cv2.CAP_FFMPEG, fourcc, self.fps, (width, height), parameters)
        if not self.writer.isOpened():
            raise UserError(f"cannot write {self.codec.description} video {self.path} (no encoder for it here)")
        self.size = (width, height)

    def write(self, image: np.ndarray, timestamp: Optional[float] = None) -> None:
        if self.writer is None:
            self._open(image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self.size:  # sources whose frame size changes
            image = cv2.resize(image, self.size)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None

    abort = close


def open_video(path: Union[str, Path], codec: Codec, fps: float, threads: Optional[int] = None) -> VideoFileWriter:
    """A writer for `codec` at `path` (whose suffix need not match: temporary names).
    `threads` caps libx264's threads (None: its default, about 1.5 per core)."""
    if codec.name == "h264":
        return H264Writer(path, codec, fps, threads)
    return OpenCVWriter(path, codec, fps)


def count_frames(path: Union[str, Path]) -> int:
    """The frames a decoder reads from `path`: how a silently failing writer's file is checked."""
    capture = cv2.VideoCapture(str(path))
    frames = 0
    try:
        while capture.grab():
            frames += 1
    finally:
        capture.release()
    return frames
