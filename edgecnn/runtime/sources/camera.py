"""Camera N as this board opens cameras (`camera:N` or `N`): picamera2 or libcamerasrc
on a Raspberry Pi, nvarguscamerasrc on a Jetson, V4L2 elsewhere (devices.camera
decides). The chosen path is another source in this registry, opened with the same
options."""
from __future__ import annotations

from typing import Any, Dict

from edgecnn.runtime.sources import SourceContext, SourceType, get_source
from edgecnn.runtime.sources._live import LiveSource
from edgecnn.runtime.sources.v4l2 import CAMERA_OPTIONS, index_of

DEFAULT_SIZE, DEFAULT_FPS = (640, 480), 30


def opener(target: str, options: Dict[str, Any], context: SourceContext) -> LiveSource:
    from devices.camera import camera_choice
    from devices.profile import detect

    index = index_of(target if ":" in target else f"camera:{target}")
    width, height = options.get("size", DEFAULT_SIZE)
    choice = camera_choice(index, detect(), width, height, int(round(options.get("fps", DEFAULT_FPS))))
    chosen = get_source(choice.api)
    if choice.api == "gstreamer":  # the pipeline already holds the size and rate
        return chosen.opener(str(choice.target), {}, context, choice.description)
    if choice.api == "v4l2":
        from edgecnn.runtime.sources.v4l2 import open_index

        return open_index(index, options, context, f"camera:{index}")
    return chosen.opener(f"{choice.api}:{choice.target}", {k: v for k, v in options.items() if k in chosen.options},
                         context)


SOURCE = SourceType(name="camera", opener=opener, schemes=("camera:",),
                    claims=lambda text: text.partition("?")[0].isdigit(), priority=5, options=CAMERA_OPTIONS,
                    summary="camera N, opened the way this board opens cameras", example="camera:N")
