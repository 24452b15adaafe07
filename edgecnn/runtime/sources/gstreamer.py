"""A GStreamer pipeline string ending in appsink (`... ! appsink`), read through
OpenCV's GStreamer backend: hardware decoders and camera ISPs that OpenCV's own
capture cannot reach. The `camera:N` source builds one for a Jetson's CSI camera and,
without picamera2, for a Pi's."""
from __future__ import annotations

from typing import Any, Dict

import cv2

from edgecnn.core.errors import UserError
from edgecnn.runtime.sources import SourceContext, SourceType
from edgecnn.runtime.sources._files import open_capture
from edgecnn.runtime.sources._live import LiveSource


def opener(target: str, options: Dict[str, Any], context: SourceContext, description: str = "") -> LiveSource:
    from devices.camera import opencv_has_gstreamer

    if not opencv_has_gstreamer():
        raise UserError("this OpenCV build has no GStreamer support, so pipeline strings cannot be opened")
    name = description or "the GStreamer pipeline"
    return LiveSource("gstreamer", lambda: open_capture(target, cv2.CAP_GSTREAMER, name), log=context.log)


SOURCE = SourceType(name="gstreamer", opener=opener, claims=lambda text: " ! " in text, priority=0,
                    summary="a GStreamer pipeline ending in appsink", example="'... ! appsink'")
