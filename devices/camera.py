"""How to open camera N on this device: the capture path that suits each board.

- Raspberry Pi: picamera2 (libcamera) when installed; else a libcamerasrc GStreamer
  pipeline when OpenCV has GStreamer; else V4L2 (USB cameras, legacy stack).
- Jetson: the CSI camera through nvarguscamerasrc (hardware ISP and NVMM buffers)
  when OpenCV has GStreamer; else V4L2 (USB cameras).
- Desktop: V4L2.

Live pipelines end in `appsink drop=true max-buffers=1` so the driver side never
queues stale frames either. Standard library only; the runtime opens the choice.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

from devices.profile import DeviceProfile


@dataclass
class CameraChoice:
    api: str  # "picamera2" | "gstreamer" | "v4l2"
    target: Union[int, str]  # camera index, or a GStreamer pipeline string
    description: str


def jetson_csi_pipeline(sensor_id: int, width: int, height: int, fps: int) -> str:
    """nvarguscamerasrc -> NVMM NV12 -> nvvidconv to BGRx -> BGR for OpenCV."""
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! "
            f"video/x-raw(memory:NVMM), width={width}, height={height}, framerate={fps}/1, format=NV12 ! "
            f"nvvidconv ! video/x-raw, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
            f"appsink drop=true max-buffers=1 sync=false")


def libcamera_pipeline(index: int, width: int, height: int, fps: int) -> str:
    """libcamerasrc (the Pi camera stack) -> BGR for OpenCV."""
    return (f"libcamerasrc camera-name=\"{index}\" ! "
            f"video/x-raw, width={width}, height={height}, framerate={fps}/1 ! "
            f"videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false")


def camera_choice(index: int, profile: DeviceProfile, width: int = 640, height: int = 480, fps: int = 30,
                  has_picamera2: Optional[bool] = None, has_gstreamer: Optional[bool] = None) -> CameraChoice:
    """The capture path for camera `index` on `profile`'s device (its `camera` field says
    which stack the board has). `has_*` default to what is installed here (tests pass
    them explicitly)."""
    if has_picamera2 is None:
        has_picamera2 = importlib.util.find_spec("picamera2") is not None
    if has_gstreamer is None:
        has_gstreamer = opencv_has_gstreamer()
    if profile.camera == "picamera2":
        if has_picamera2:
            return CameraChoice("picamera2", index, f"Pi camera {index} via picamera2")
        if has_gstreamer:
            return CameraChoice("gstreamer", libcamera_pipeline(index, width, height, fps),
                                f"Pi camera {index} via libcamerasrc")
    if profile.camera == "nvargus" and has_gstreamer:
        return CameraChoice("gstreamer", jetson_csi_pipeline(index, width, height, fps),
                            f"CSI camera {index} via nvarguscamerasrc")
    return CameraChoice("v4l2", index, f"V4L2 camera /dev/video{index}")


def opencv_has_gstreamer() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    match = re.search(r"GStreamer:\s*(\w+)", cv2.getBuildInformation())
    return bool(match and match.group(1).upper() == "YES")


def v4l2_indices(root: str = "/") -> List[int]:
    """Indices N of the /dev/videoN nodes present (under `root`, for tests)."""
    found = []
    for node in Path(root, "dev").glob("video*"):
        suffix = node.name[5:]
        if suffix.isdigit():
            found.append(int(suffix))
    return sorted(found)
