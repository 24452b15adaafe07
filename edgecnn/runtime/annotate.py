"""Drawing results onto frames, for the saved video, the window, the web view and a
robot program's own output (`edgecnn.annotate(frame, result)`). Each result type
draws itself (its `draw(canvas)`); this module owns the canvas, colours and labels."""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
           (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0)]


def colour_of(class_id: int):
    return PALETTE[int(class_id) % len(PALETTE)]


def draw_label(image: np.ndarray, text: str, origin, colour) -> None:
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    x, y = int(origin[0]), max(int(origin[1]), height + baseline)
    cv2.rectangle(image, (x, y - height - baseline), (x + width, y), colour, -1)
    cv2.putText(image, text, (x, y - baseline), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)


def annotate(image: np.ndarray, result, status: Optional[str] = None) -> np.ndarray:
    """A BGR copy of `image` with the result drawn on it and an optional status line at
    the bottom; `image` itself is left untouched."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[:, :, :3].copy()
    result.draw(canvas)
    places = getattr(result, "places", None)
    if places:  # a camera's zones and lines with their counts, over the boxes so their counts stay readable
        from edgecnn.runtime.analytics.drawing import draw_places

        draw_places(canvas, places, getattr(result, "analytics", None))
    if status:
        draw_label(canvas, status, (4, canvas.shape[0] - 2), (40, 40, 40))
    return canvas
