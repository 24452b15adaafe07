"""A V4L2 camera (`/dev/videoN` or `v4l2:N`): USB cameras everywhere, and the CSI
camera where no better stack is installed. Size, frame rate and pixel format are asked
of the driver; what it actually delivers is logged when it differs (drivers round to
the modes they have)."""
from __future__ import annotations

import os
from typing import Any, Dict, List

import cv2

from edgecnn.core.errors import UserError
from edgecnn.runtime.sources import SourceContext, SourceOption, SourceType, parse_fourcc, parse_fps, parse_size
from edgecnn.runtime.sources._files import open_capture
from edgecnn.runtime.sources._live import LiveSource

CAMERA_OPTIONS = {"size": SourceOption("frame size WIDTHxHEIGHT asked of the camera (default: the driver's)",
                                       parse_size),
                  "fps": SourceOption("frame rate asked of the camera", parse_fps),
                  "format": SourceOption("pixel format FourCC, e.g. MJPG (more FPS over USB 2) or YUYV",
                                         parse_fourcc)}


def index_of(text: str) -> int:
    digits = text.rpartition(":")[2] if ":" in text else text[len("/dev/video"):]
    if not digits.isdigit():
        raise UserError(f"camera index must be a number, got {text!r}")
    return int(digits)


def open_v4l2(index: int, options: Dict[str, Any], log, name: str, root: str = "/") -> cv2.VideoCapture:
    """Open /dev/videoN and ask for the options' size, rate and format."""
    if not os.path.exists(os.path.join(root, "dev", f"video{index}")):
        raise UserError(f"no camera at index {index}")
    capture = open_capture(index, cv2.CAP_V4L2, name)
    if "format" in options:
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*options["format"]))
    if "size" in options:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, options["size"][0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, options["size"][1])
    if "fps" in options:
        capture.set(cv2.CAP_PROP_FPS, options["fps"])
    got = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if "size" in options and got != tuple(options["size"]):
        log(f"{name}: asked for {options['size'][0]}x{options['size'][1]}, the driver gives {got[0]}x{got[1]}")
    return capture


def camera_indices_that_open(root: str = "/") -> List[int]:
    """V4L2 cameras that actually open here (checked only for /dev/videoN nodes that exist,
    so probing never makes OpenCV print warnings)."""
    from devices.camera import v4l2_indices

    working = []
    for index in v4l2_indices(root):
        capture = cv2.VideoCapture(index, cv2.CAP_V4L2)
        if capture.isOpened():
            working.append(index)
        capture.release()
    return working


def missing_camera_error(index: int, root: str = "/") -> UserError:
    working = [f"camera:{i}" for i in camera_indices_that_open(root) if i != index]
    return UserError(f"no camera at index {index}; sources that open here: {', '.join(working + ['demo'])} "
                     f"(video files, images, rtsp:// URLs and GStreamer pipelines also work)")


def open_index(index: int, options: Dict[str, Any], context: SourceContext, name: str) -> LiveSource:
    try:
        return LiveSource(name, lambda: open_v4l2(index, options, context.log, name), log=context.log,
                          fps=options.get("fps", 0.0))
    except UserError:
        raise missing_camera_error(index) from None


def opener(target: str, options: Dict[str, Any], context: SourceContext) -> LiveSource:
    index = index_of(target)
    return open_index(index, options, context, target if target.startswith("/dev/") else f"/dev/video{index}")


def _is_device(text: str) -> bool:
    return text.startswith("/dev/video") and text.partition("?")[0][len("/dev/video"):].isdigit()


SOURCE = SourceType(name="v4l2", opener=opener, schemes=("v4l2:",), claims=_is_device, priority=10,
                    options=CAMERA_OPTIONS, summary="a V4L2 camera device", example="/dev/videoN")
