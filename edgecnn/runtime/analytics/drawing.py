"""Zones and lines drawn on a frame with their counts, for the saved video, the window
and the web view: a zone as its outline and name with the objects inside now, a line
as the segment with an arrow to its `in` side and its in/out totals."""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

ZONE_COLOUR, LINE_COLOUR = (0, 215, 255), (255, 160, 0)  # BGR: amber zones, blue lines


def draw_places(canvas: np.ndarray, geometry: Sequence[Tuple[str, str, np.ndarray]], frame) -> None:
    """geometry: (kind "zone" | "line", name, points in frame pixels; a line's second
    item is the point its `in` side is towards) per place; frame: the AnalyticsFrame
    whose counts are written beside them."""
    from edgecnn.runtime.annotate import draw_label

    for kind, name, points in geometry:
        pts = np.round(points).astype(np.int32)
        if kind == "zone":
            cv2.polylines(canvas, [pts], True, ZONE_COLOUR, 2, cv2.LINE_AA)
            inside = sum(frame.occupancy.get(name, {}).values()) if frame is not None else 0
            corner = pts[np.argmin(pts.sum(1))]  # the top-left-most corner: its label sits just inside
            draw_label(canvas, f"{name}: {inside}", (corner[0] + 3, corner[1] + 18), (0, 140, 170))
        else:
            start, end, towards_in = pts[0], pts[1], pts[2]
            cv2.line(canvas, tuple(int(v) for v in start), tuple(int(v) for v in end), LINE_COLOUR, 2, cv2.LINE_AA)
            middle = (start + end) // 2
            cv2.arrowedLine(canvas, tuple(int(v) for v in middle), tuple(int(v) for v in towards_in), LINE_COLOUR, 1,
                            cv2.LINE_AA, tipLength=0.3)
            counts: Dict[str, Dict[str, int]] = frame.line_counts.get(name, {}) if frame is not None else {}
            totals = (sum(counts.get("in", {}).values()), sum(counts.get("out", {}).values()))
            draw_label(canvas, f"{name}: in {totals[0]} out {totals[1]}", (middle[0] + 4, middle[1] - 4),
                       (160, 100, 0))


def geometry_of(zones, lines, frame_size: Tuple[int, int]) -> list:
    """Each zone's and line's points in frame pixels ((width, height) of the frame),
    with, for a line, a point 20 px towards its `in` side from its middle."""
    width, height = frame_size
    scale = np.array([width, height], np.float64)
    shapes = []
    for zone in zones:
        points = np.array(zone.points, np.float64) * (scale if zone.fractions else 1.0)
        shapes.append(("zone", zone.name, points))
    for line in lines:
        ends = np.array([line.start, line.end], np.float64) * (scale if line.fractions else 1.0)
        direction = ends[1] - ends[0]
        left = np.array([direction[1], -direction[0]]) / max(1e-9, float(np.hypot(*direction)))
        towards = left if line.in_side == "left" else -left
        middle = ends.mean(0)
        shapes.append(("line", line.name, np.vstack([ends, middle + 20 * towards])))
    return shapes
