"""Images one after another: a file, every image in a directory, or a glob; decoded
ahead in a thread. An image that does not decode is named, counted and skipped; the
run's summary and exit code say so. `?realtime=1`/`?fps=N` pace them like a camera,
`?loop=1` starts over at the end."""
from __future__ import annotations

import glob
import os
from typing import Any, Callable, Dict, Iterator, List, Optional

import cv2
import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.core.files import is_image_file
from edgecnn.runtime.sources import Source, SourceContext, SourceType, stderr_log
from edgecnn.runtime.sources._files import ReadAheadSource
from edgecnn.runtime.sources._live import LiveSource
from edgecnn.runtime.sources.video import FILE_OPTIONS

DEFAULT_FPS = 30.0  # pace of images read in real time without ?fps


def read_image(path: str) -> Optional[np.ndarray]:
    """The image as 8-bit BGR (or grey), or None when it does not decode."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    if image.dtype != np.uint8:  # 16-bit PNG/TIFF: scale to 8 bits
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    return image


class ImageFilesSource(ReadAheadSource):
    """Images one after another, decoded ahead; an image that does not decode is
    reported and skipped (counted in `skipped`)."""

    def __init__(self, name: str, paths: List[str], log: Callable[[str], None] = stderr_log, ahead: int = 4,
                 loop: bool = False) -> None:
        self.paths, self._log, self._loop = paths, log, loop
        self.skipped = 0
        super().__init__(name, ahead)

    def _images(self) -> Iterator[tuple]:
        index = 0
        while True:
            decoded = 0
            for path in self.paths:
                image = read_image(path)
                if image is None:
                    self.skipped += 1
                    self._log(f"{path}: not a readable image; skipped")
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
            image = read_image(path)
            if image is not None:
                self.total += 1
                return True, image
            self.files.skipped += 1
            self.files._log(f"{path}: not a readable image; skipped")

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
    if read_image(text) is None:
        raise UserError(f"{text}: not a readable image")
    return [text]


def opener(target: str, options: Dict[str, Any], context: SourceContext) -> Source:
    files = ImageFilesSource(target, image_paths(target), context.log, loop=options.get("loop", False))
    if options.get("realtime", context.realtime) or "fps" in options:
        return PacedImages(files, options.get("fps", DEFAULT_FPS), context.log)
    return files


def _claims(text: str) -> bool:
    base = text.rpartition("?")[0] if "=" in text.rpartition("?")[2] else text
    return any(ch in base for ch in "*?[") or os.path.isdir(base) or (os.path.isfile(base) and is_image_file(base))


SOURCE = SourceType(name="images", opener=opener, claims=_claims, priority=80, options=FILE_OPTIONS, live=False,
                    summary="an image, a directory of images or a glob", example="DIR | *.jpg")
