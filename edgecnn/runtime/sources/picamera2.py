"""A Raspberry Pi camera through picamera2 (libcamera): `picamera2:N`. The `camera:N`
source picks it on a Pi where picamera2 is installed."""
from __future__ import annotations

from typing import Any, Dict

from edgecnn.core.errors import UserError
from edgecnn.runtime.sources import SourceContext, SourceOption, SourceType, parse_fps, parse_size
from edgecnn.runtime.sources._live import LiveSource
from edgecnn.runtime.sources.v4l2 import index_of

DEFAULT_SIZE = (640, 480)


class Picamera2Capture:
    """picamera2 behind the read()/release() interface the capture thread uses."""

    def __init__(self, index: int, size=DEFAULT_SIZE, fps: float = 0.0) -> None:
        from picamera2 import Picamera2

        try:
            self.camera = Picamera2(index)
            controls = {"FrameRate": float(fps)} if fps else {}
            # picamera2's "RGB888" is B, G, R in memory: OpenCV's order.
            self.camera.configure(self.camera.create_video_configuration(
                main={"size": tuple(size), "format": "RGB888"}, buffer_count=2, controls=controls))
            self.camera.start()
        except (IndexError, RuntimeError) as exc:
            raise UserError(f"cannot open Pi camera {index}: {exc}") from None

    def read(self):
        try:
            return True, self.camera.capture_array()
        except RuntimeError:
            return False, None

    def release(self) -> None:
        self.camera.close()


def opener(target: str, options: Dict[str, Any], context: SourceContext) -> LiveSource:
    import importlib.util

    if importlib.util.find_spec("picamera2") is None:
        raise UserError("picamera2 is not installed (on Raspberry Pi OS: sudo apt install python3-picamera2, and "
                        "make the venv with --system-site-packages)")
    index = index_of(target)
    size, fps = options.get("size", DEFAULT_SIZE), options.get("fps", 0.0)
    return LiveSource(f"picamera2:{index}", lambda: Picamera2Capture(index, size, fps), log=context.log, fps=fps)


SOURCE = SourceType(name="picamera2", opener=opener, schemes=("picamera2:",),
                    options={"size": SourceOption("frame size WIDTHxHEIGHT (default 640x480)", parse_size),
                             "fps": SourceOption("frame rate", parse_fps)},
                    summary="a Raspberry Pi camera through picamera2", example="picamera2:N")
