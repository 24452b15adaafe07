"""Images one after another: a file, every image in a directory, or a glob; decoded
ahead in a thread. An image that does not decode is named, counted and skipped; the
run's summary and exit code say so. An image is decoded only when its header declares at
most `max_pixels` pixels (default 50 million: a 12000x12000 PNG would take ~430 MB as
pixels, more than a small device can spare; `?max_pixels=N` raises it). `?realtime=1`
/`?fps=N` pace them like a camera, `?loop=1` starts over at the end."""
from __future__ import annotations

import glob
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.core.files import is_image_file
from edgecnn.runtime.sources import Source, SourceContext, SourceOption, SourceType, parse_count, stderr_log
from edgecnn.runtime.sources._files import ReadAheadSource
from edgecnn.runtime.sources._live import LiveSource
from edgecnn.runtime.sources.video import FILE_OPTIONS

DEFAULT_FPS = 30.0  # pace of images read in real time without ?fps
MAX_PIXELS = 50_000_000  # the most pixels an image's header may declare for it to be decoded


def image_problem(path: str, max_pixels: int = MAX_PIXELS) -> Optional[str]:
    """Why an image is not decoded (too large by its header), or None."""
    import imagesize

    try:
        width, height = imagesize.get(path)
    except (OSError, ValueError):
        return None  # an unreadable header: the decoder says why
    if width > 0 and height > 0 and width * height > max_pixels:
        return (f"declares {width}x{height} pixels, more than the limit of {max_pixels:,} (raise it with "
                f"?max_pixels=N)")
    return None


def read_image(path: str, max_pixels: int = MAX_PIXELS) -> Tuple[Optional[np.ndarray], str]:
    """(the image as 8-bit BGR or grey, "") or (None, why it was not decoded)."""
    problem = image_problem(path, max_pixels)
    if problem is not None:
        return None, problem
    try:
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # OpenCV's own limits and decoder failures
        return None, f"cannot be decoded ({str(exc).strip().splitlines()[-1][:120]})"
    if image is None:
        return None, "not a readable image"
    if image.dtype != np.uint8:  # 16-bit PNG/TIFF: scale to 8 bits
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    return image, ""


class ImageFilesSource(ReadAheadSource):
    """Images one after another, decoded ahead; an image that does not decode is
    reported and skipped (counted in `skipped`)."""

    def __init__(self, name: str, paths: List[str], log: Callable[[str], None] = stderr_log, ahead: int = 4,
                 loop: bool = False, max_pixels: int = MAX_PIXELS) -> None:
        self.paths, self._log, self._loop, self.max_pixels = paths, log, loop, max_pixels
        self.skipped = 0
        self.last_skip = ""  # the newest skipped image and why, for --strict's message
        super().__init__(name, ahead)

    def skip(self, path: str, why: str) -> None:
        self.skipped += 1
        self.last_skip = f"{path}: {why}"
        self._log(f"{path}: {why}; skipped ({self.skipped} so far)")

    def _images(self) -> Iterator[tuple]:
        index = 0
        while True:
            decoded = 0
            for path in self.paths:
                image, why = read_image(path, self.max_pixels)
                if image is None:
                    self.skip(path, why)
                else:
                    decoded += 1
                    yield index, image
                index += 1
            if not self._loop or not decoded:
                return


class ImageSequence:
    """Images behind the read()/release() interface the capture thread uses (real-time
    reading); skipped ones are counted on `source`."""

    def __init__(self, files: ImageFilesSource) -> None:
        self.files, self.position = files, 0
        self.total = 0

    def read(self):
        while True:
            if self.position >= len(self.files.paths):
                if not self.files._loop or not self.total:
                    return False, None
                self.position = 0
            path = self.files.paths[self.position]
            self.position += 1
            image, why = read_image(path, self.files.max_pixels)
            if image is not None:
                self.total += 1
                return True, image
            self.files.skip(path, why)

    def release(self) -> None:
        pass


class PacedImages(LiveSource):
    """Images read in real time; `skipped` counts those that did not decode."""

    def __init__(self, files: ImageFilesSource, fps: float, log) -> None:
        self._files = files
        super().__init__(files.name, lambda: ImageSequence(files), finite=True, period=1.0 / fps, log=log)

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self._files.skipped

    @property
    def last_skip(self) -> str:
        return self._files.last_skip


def image_paths(text: str) -> List[str]:
    if any(ch in text for ch in "*?["):
        paths = sorted(p for p in glob.glob(text) if is_image_file(p))
        if not paths:
            raise UserError(f"no images match {text}")
        return paths
    if os.path.isdir(text):
        paths = sorted(os.path.join(text, n) for n in os.listdir(text) if is_image_file(n))
        if not paths:
            raise UserError(f"{text}: no images in this directory")
        return paths
    problem = image_problem(text)
    if problem is not None or cv2.haveImageReader(text) is False:
        raise UserError(f"{text}: {problem or 'not a readable image'}")  # one image that cannot work: at start
    return [text]


def opener(target: str, options: Dict[str, Any], context: SourceContext) -> Source:
    files = ImageFilesSource(target, image_paths(target), context.log, loop=options.get("loop", False),
                             max_pixels=options.get("max_pixels", MAX_PIXELS))
    if options.get("realtime", context.realtime) or "fps" in options:
        return PacedImages(files, options.get("fps", DEFAULT_FPS), context.log)
    return files


def _claims(text: str) -> bool:
    base = text.rpartition("?")[0] if "=" in text.rpartition("?")[2] else text
    return any(ch in base for ch in "*?[") or os.path.isdir(base) or (os.path.isfile(base) and is_image_file(base))


def _parse_pixels(text: str) -> int:
    value = parse_count(text)
    if value < 1:
        raise ValueError(f"needs max_pixels >= 1, got {text}")
    return value


SOURCE = SourceType(name="images", opener=opener, claims=_claims, priority=80, live=False,
                    options={**FILE_OPTIONS, "max_pixels": SourceOption(
                        f"images whose header declares more pixels are skipped (default {MAX_PIXELS:,})",
                        _parse_pixels)},
                    summary="an image, a directory of images or a glob", example="DIR | *.jpg")
