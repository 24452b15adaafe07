"""Lines: directed segments that tracked objects cross, counted per direction and label.

Direction: a line runs from `start` to `end`; its *left* side is the one on the left
of someone walking on the image from `start` towards `end`, as on a map with north
up (x to the right, y down): for a line drawn left to right its left is the upper
side, for one drawn top to bottom it is the image's right-hand side. A crossing into
the `in_side` (default left) is `in`, the other way `out`. (The default matches
supervision's LineZone: a line from (0, 100) to (200, 100) counts an object moving
from below it to above it as in.)

Jitter guard: a track's anchor is on a side only when it is farther from the line than
a band: `margin` pixels, or `margin_fraction` of the box's own extent across the line
(its width for an upright line, its height for a level one) when that is wider; inside
the band it keeps the side it had. The band grows with the box because a box's jitter
does, and so does an object's rocking: a 60-pixel shape swinging 8 pixels either side
of a line is one crossing, not six (benchmarks/zones_pipeline.py). A crossing counts
when the anchor goes from one side to the other, and only when the path between the
last point on the old side and the first on the new one meets the line between
`start` and `end` (passing beside an end of the segment changes the side without
counting). So a box jittering on the line counts nothing, one that stops on it counts
when, and only if, it leaves on the other side, and one that reappears on the other
side after an occlusion counts once, on the frame it reappears. A track first seen
inside the band has no side until it leaves the band: that first side does not count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.analytics.geometry import (anchor_fraction, as_points, check_fractions, check_segment,
                                                label_filter, label_names, number, resolve_points)

SIDES = ("left", "right")


@dataclass(frozen=True)
class Line:
    """A named segment from start to end (frame pixels, or fractions of the frame with
    fractions=True); labels: the labels it counts (empty: all); anchor: the point of a
    box that crosses (geometry.ANCHORS); in_side: the side (left or right of start ->
    end) that a crossing into counts as `in`; margin: pixels from the line an anchor
    must be to be on a side, or margin_fraction of the box's extent across the line when
    that is more."""

    name: str
    start: Tuple[float, float]
    end: Tuple[float, float]
    fractions: bool = False
    labels: Sequence[str] = ()
    anchor: str = "bottom-center"
    in_side: str = "left"
    margin: float = 4.0
    margin_fraction: float = 0.15

    def __post_init__(self) -> None:
        if not str(self.name):
            raise UserError("a line needs a name")
        owner = f"line {self.name!r}"
        points = as_points([self.start, self.end], owner)
        check_segment(points[0], points[1], owner)
        if self.fractions:
            check_fractions(points, owner)
        anchor_fraction(self.anchor, owner)
        if self.in_side not in SIDES:
            raise UserError(f"{owner}: in_side must be left or right (of start -> end), got {self.in_side!r}")
        if not number(self.margin, "margin", owner) >= 0:
            raise UserError(f"{owner}: margin must be 0 or more pixels, got {self.margin}")
        if not 0 <= number(self.margin_fraction, "margin_fraction", owner) < 1:
            raise UserError(f"{owner}: margin_fraction must be at least 0 and under 1 (of the box's extent across "
                            f"the line), got {self.margin_fraction}")
        object.__setattr__(self, "start", tuple(float(v) for v in points[0]))
        object.__setattr__(self, "end", tuple(float(v) for v in points[1]))
        object.__setattr__(self, "labels", label_names(self.labels))
        object.__setattr__(self, "margin", float(self.margin))
        object.__setattr__(self, "margin_fraction", float(self.margin_fraction))


@dataclass(frozen=True)
class LineCrossing:
    """One track crossing one line; point: where its anchor's path met the line."""

    line: str
    direction: str  # in | out
    track_id: int
    label: str
    class_id: int
    frame_index: int
    time: float
    box: Tuple[float, float, float, float]
    point: Tuple[float, float]
    event: str = "cross"

    def to_dict(self) -> dict:
        return {"event": self.event, "line": self.line, "direction": self.direction, "track_id": self.track_id,
                "label": self.label, "class_id": self.class_id, "frame": self.frame_index,
                "time": round(self.time, 4), "box": [round(v, 1) for v in self.box],
                "point": [round(v, 1) for v in self.point]}


# The state of a (track, line) pair, packed along the last axis: the side the track is
# on (+1 left, -1 right, 0 not known yet) and its latest anchor point on that side.
SIDE, ORIGIN_X, ORIGIN_Y = range(3)


class LineStates:
    """The state of every (track row, line) pair, as one (rows, lines, 3) array, and the
    cumulative counts (lines, classes, in/out)."""

    def __init__(self, lines: Sequence[Line], capacity: int) -> None:
        self.lines, self.capacity = list(lines), capacity
        self.in_sign = np.array([1 if line.in_side == "left" else -1 for line in self.lines], np.int8)
        self.margin = np.array([line.margin for line in self.lines], np.float64)
        self.margin_fraction = np.array([line.margin_fraction for line in self.lines], np.float64)
        self.any_fraction = bool(np.any(self.margin_fraction))
        self.filtered = np.array([bool(line.labels) for line in self.lines], bool)
        self.accepts = np.ones((len(self.lines), 0), bool)
        self.counts = np.zeros((len(self.lines), 0, 2), np.int64)  # [..., 0]: in, [..., 1]: out
        self.state = np.zeros((capacity, len(self.lines), 3))

    def resolve(self, frame_size: Tuple[int, int]) -> None:
        ends = [resolve_points(np.array([line.start, line.end]), line.fractions, frame_size, f"line {line.name!r}")
                for line in self.lines]
        ends = np.array(ends, np.float64).reshape(-1, 2, 2)
        for line, (start, end) in zip(self.lines, ends):
            check_segment(start, end, f"line {line.name!r}")
        self.start = ends[:, 0]
        self.direction = ends[:, 1] - ends[:, 0]
        self.length = np.hypot(self.direction[:, 0], self.direction[:, 1])
        # The unit normal pointing left (y grows downwards) and the line's offset along it
        self.normal_x, self.normal_y = self.direction[:, 1] / self.length, -self.direction[:, 0] / self.length
        self.offset = self.start[:, 0] * self.normal_x + self.start[:, 1] * self.normal_y
        # a box's extent across each line is width * |normal_x| + height * |normal_y|:
        # the band's share of each, precomputed (the band is a few numpy calls per frame)
        self.width_share = np.abs(self.normal_x) * self.margin_fraction
        self.height_share = np.abs(self.normal_y) * self.margin_fraction
        self.geometry = [tuple(float(v) for v in values) for values in zip(
            self.start[:, 0], self.start[:, 1], self.direction[:, 0], self.direction[:, 1], self.normal_x,
            self.normal_y, self.offset)]  # per line, as Python floats for the few crossings of a frame

    def set_labels(self, labels: Sequence[str], class_count: int) -> None:
        self.accepts = label_filter("line", self.lines, labels, class_count)
        grown = np.zeros((len(self.lines), class_count, 2), np.int64)
        grown[:, :self.counts.shape[1]] = self.counts
        self.counts = grown

    def grow(self, capacity: int) -> None:
        self.state = np.concatenate([self.state, np.zeros((capacity - self.capacity,) + self.state.shape[1:])])
        self.capacity = capacity

    def clear(self, row: int) -> None:
        self.state[row] = 0.0

    def left_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Points' x, y (N, lines or 1) -> signed distance to each line, > 0 on its left."""
        distance = x * self.normal_x
        distance += y * self.normal_y
        distance -= self.offset
        return distance

    def bands(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes (N, 4: x1, y1, x2, y2) -> the jitter band of each (box, line), (N, lines):
        the line's margin, or its fraction of the box's extent along the line's normal."""
        if not self.any_fraction:
            return self.margin
        band = np.multiply.outer(boxes[:, 2] - boxes[:, 0], self.width_share)
        band += np.multiply.outer(boxes[:, 3] - boxes[:, 1], self.height_share)
        return np.maximum(band, self.margin, out=band)

    def observe(self, rows: np.ndarray, anchors: np.ndarray, classes: np.ndarray,
                boxes: np.ndarray) -> List[Tuple[int, int, str, Tuple[float, float]]]:
        """One frame's tracked detections (rows: their track rows; anchors (N, lines or
        1, 2); boxes (N, 4), for the bands) -> the crossings, as (index in rows, line,
        in | out, crossing point)."""
        x, y = anchors[..., 0], anchors[..., 1]
        distance = self.left_distance(x, y)
        band = self.bands(boxes)
        now = (distance > band).view(np.int8) - (distance < -band).view(np.int8)
        state = self.state[rows]
        before = state[..., SIDE]
        crossed = now * before < 0
        out: List[Tuple[int, int, str, Tuple[float, float]]] = []
        if np.count_nonzero(crossed):  # a few pairs at most: plain Python arithmetic is quicker here
            for i, k in zip(*(index.tolist() for index in np.nonzero(crossed))):
                start_x, start_y, direction_x, direction_y, normal_x, normal_y, offset = self.geometry[k]
                origin_x, origin_y = float(state[i, k, ORIGIN_X]), float(state[i, k, ORIGIN_Y])
                column = k if x.shape[1] > 1 else 0  # (N, 1): one anchor shared by every line
                target_x, target_y = float(x[i, column]), float(y[i, column])
                origin_distance = origin_x * normal_x + origin_y * normal_y - offset
                fraction = origin_distance / (origin_distance - float(distance[i, k]))
                point_x = origin_x + (target_x - origin_x) * fraction
                point_y = origin_y + (target_y - origin_y) * fraction
                along = ((point_x - start_x) * direction_x + (point_y - start_y) * direction_y) / (
                    direction_x ** 2 + direction_y ** 2)
                if 0 <= along <= 1 and self.accepts[k, classes[i]]:
                    direction = "in" if now[i, k] == self.in_sign[k] else "out"
                    self.counts[k, classes[i], 0 if direction == "in" else 1] += 1
                    out.append((i, k, direction, (point_x, point_y)))
        on_a_side = now != 0
        np.copyto(before, now, where=on_a_side)
        np.copyto(state[..., ORIGIN_X], x, where=on_a_side)
        np.copyto(state[..., ORIGIN_Y], y, where=on_a_side)
        self.state[rows] = state
        return out
