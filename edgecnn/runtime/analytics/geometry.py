"""The geometry of zones and lines: a box's anchor point, points inside polygons (many
points against many polygons in one numpy pass), and the checks that turn a bad
polygon or line into one clear user error.

Coordinates are frame pixels, x to the right and y down, as the detector's boxes are.
A zone or line may also be given as fractions of the frame (`fractions=True`: x as a
fraction of the width, y of the height, every value within 0..1); `resolve_points`
turns them into pixels once the frame size is known. Pixel coordinates must lie in
the frame (0..width, 0..height), so a typo does not silently make a zone unreachable.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError

# Where on a box (x1, y1, x2, y2) its anchor lies, as fractions of its width and height.
ANCHORS = {
    "bottom-center": (0.5, 1.0),
    "center": (0.5, 0.5),
    "top-center": (0.5, 0.0),
    "bottom-left": (0.0, 1.0),
    "bottom-right": (1.0, 1.0),
    "top-left": (0.0, 0.0),
    "top-right": (1.0, 0.0),
    "center-left": (0.0, 0.5),
    "center-right": (1.0, 0.5),
}

Point = Tuple[float, float]


def anchor_fraction(anchor: str, owner: str) -> Point:
    """The (fx, fy) of an anchor's name; `owner` names the zone or line in the error."""
    try:
        return ANCHORS[anchor]
    except KeyError:
        raise UserError(f"{owner}: unknown anchor {anchor!r}; known: {', '.join(ANCHORS)}") from None


def anchor_points(boxes: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) and anchors (K, 2) as fractions of a box -> points (N, K, 2)."""
    corner = boxes[:, None, :2]
    size = boxes[:, None, 2:] - corner
    return corner + size * fractions[None, :, :]


def as_points(points: Iterable, owner: str) -> np.ndarray:
    """Points as a float array (N, 2) of finite numbers, or a one-line error."""
    try:
        array = np.asarray([[float(value) for value in point] for point in points], np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{owner}: points must be pairs of numbers (x, y), got {list(points)!r}") from None
    if array.ndim != 2 or array.shape[1] != 2:
        raise UserError(f"{owner}: points must be pairs of numbers (x, y), got {list(points)!r}")
    if not np.isfinite(array).all():
        raise UserError(f"{owner}: points must be finite numbers")
    return array


def number(value, name: str, owner: str) -> float:
    """An option's value as a finite float, or a one-line error."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{owner}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(result):
        raise UserError(f"{owner}: {name} must be a finite number, got {value!r}")
    return result


def label_names(labels) -> Tuple[str, ...]:
    """The labels a zone or line counts: one name, or a list of names."""
    return (labels,) if isinstance(labels, str) else tuple(str(label) for label in labels)


def label_filter(kind: str, places: Sequence, labels: Sequence[str], class_count: int) -> np.ndarray:
    """(places, classes) bool: the classes each zone or line counts, from the detector's
    labels (index: class id; class ids past the labels have no name, so only places of
    all labels count them). An unknown label is one line naming the place."""
    accepts = np.ones((len(places), class_count), bool)
    for k, place in enumerate(places):
        if place.labels:
            unknown = [label for label in place.labels if label not in labels]
            if unknown:
                raise UserError(f"{kind} {place.name!r}: unknown label {unknown[0]!r}; the model's labels: "
                                f"{', '.join(labels)}")
            accepts[k] = [c < len(labels) and labels[c] in place.labels for c in range(class_count)]
    return accepts


def parse_points(text: str, owner: str) -> Tuple[Point, ...]:
    """'x,y x,y ...' (the form a command-line option or a config value takes) -> points."""
    points = []
    for pair in text.replace(";", " ").split():
        values = pair.split(",")
        try:
            if len(values) != 2:
                raise ValueError
            points.append((float(values[0]), float(values[1])))
        except ValueError:
            raise UserError(f"{owner}: expected points as 'x,y x,y ...', got {pair!r} in {text!r}") from None
    return tuple(points)


def check_fractions(points: np.ndarray, owner: str) -> None:
    outside = (points < 0) | (points > 1)
    if outside.any():
        x, y = points[np.flatnonzero(outside.any(axis=1))[0]]
        raise UserError(f"{owner}: coordinates given as fractions of the frame must lie within 0..1, "
                        f"got ({_number(x)}, {_number(y)})")


def resolve_points(points: np.ndarray, fractions: bool, frame_size: Tuple[int, int], owner: str) -> np.ndarray:
    """Points in pixels of a frame (width, height): fractions scaled, pixels checked to
    lie in the frame."""
    width, height = frame_size
    if fractions:
        return points * np.array([width, height], np.float64)
    outside = (points[:, 0] < 0) | (points[:, 0] > width) | (points[:, 1] < 0) | (points[:, 1] > height)
    if outside.any():
        x, y = points[np.flatnonzero(outside)[0]]
        raise UserError(f"{owner}: point ({_number(x)}, {_number(y)}) lies outside the {width}x{height} frame "
                        f"(give fractions of the frame with fractions=True)")
    return points


def _number(value: float) -> str:
    return f"{value:g}"


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """z of (a - o) x (b - o): > 0 when o -> a -> b turns one way, < 0 the other, 0 collinear."""
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _on_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """p, known to be collinear with a-b, lies between a and b (ends included)."""
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_meet(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    """Closed segments a-b and c-d share a point (crossing, touching or overlapping)."""
    d1, d2, d3, d4 = _cross(c, d, a), _cross(c, d, b), _cross(a, b, c), _cross(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return ((d1 == 0 and _on_segment(a, c, d)) or (d2 == 0 and _on_segment(b, c, d))
            or (d3 == 0 and _on_segment(c, a, b)) or (d4 == 0 and _on_segment(d, a, b)))


def check_polygon(points: np.ndarray, owner: str) -> None:
    """At least 3 points, no repeated point, not all on one line, and edges that meet
    only where consecutive edges join (a simple polygon, which then has an area): what
    inside and outside need to mean what the user drew."""
    count = len(points)
    if count < 3:
        raise UserError(f"{owner}: a zone needs at least 3 points, got {count}")
    for i in range(count):
        for j in range(i + 1, count):
            if np.array_equal(points[i], points[j]):
                raise UserError(f"{owner}: point {j + 1} repeats point {i + 1} "
                                f"({_number(points[i][0])}, {_number(points[i][1])})")
    spread = points[1:] - points[0]
    if not np.any(spread[:, 0, None] * spread[None, :, 1] - spread[:, 1, None] * spread[None, :, 0]):
        raise UserError(f"{owner}: the polygon has zero area (its points lie on one line)")
    for i in range(count):
        a, b, c = points[i], points[(i + 1) % count], points[(i + 2) % count]
        if _cross(a, b, c) == 0 and float(np.dot(b - a, c - b)) < 0:
            raise UserError(f"{owner}: the polygon crosses itself (it turns back on itself at point "
                            f"{(i + 1) % count + 1})")
    for i in range(count):
        for j in range(i + 2, count):
            if i == 0 and j == count - 1:
                continue  # the closing edge and the first edge are neighbours
            if segments_meet(points[i], points[(i + 1) % count], points[j], points[(j + 1) % count]):
                raise UserError(f"{owner}: the polygon crosses itself (edge {i + 1}-{(i + 1) % count + 1} "
                                f"meets edge {j + 1}-{(j + 1) % count + 1})")


def check_segment(start: np.ndarray, end: np.ndarray, owner: str) -> None:
    if math.hypot(*(end - start)) == 0:
        raise UserError(f"{owner}: a line needs two different points, got ({_number(start[0])}, "
                        f"{_number(start[1])}) twice")


class PolygonSet:
    """Many polygons, tested together: their edges packed into (E, 1, K) arrays (edge
    first, so that the sum over edges adds whole slabs), shorter polygons padded with
    zero-length edges, which never span a ray."""

    def __init__(self, polygons: Sequence[np.ndarray]) -> None:
        self.count = len(polygons)
        edges = max((len(p) for p in polygons), default=1)
        start = np.zeros((edges, 1, self.count, 2))
        end = np.zeros((edges, 1, self.count, 2))
        for k, polygon in enumerate(polygons):
            start[:len(polygon), 0, k], start[len(polygon):, 0, k] = polygon, polygon[0]
            end[:len(polygon), 0, k], end[len(polygon):, 0, k] = np.roll(polygon, -1, axis=0), polygon[0]
        # An edge a -> b and a point p: side = (b - a) x (p - a) = dx * py - dy * px - offset
        self.dx, self.dy = end[..., 0] - start[..., 0], end[..., 1] - start[..., 1]  # (E, 1, K)
        self.offset = self.dx * start[..., 1] - self.dy * start[..., 0]
        self.y1, self.y2 = start[..., 1], end[..., 1]

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Points (N, K, 2), one per polygon (or (N, 1, 2): the same point for all)
        -> (N, K) bool: the point lies inside that polygon. Even-odd rule over the
        edges a horizontal ray from the point crosses; for the simple polygons allowed
        that is the same as the winding number. Points exactly on an edge may fall
        either way."""
        px, py = points[..., 0], points[..., 1]  # (N, K)
        side = self.dx * py
        side -= self.dy * px
        side -= self.offset  # (E, N, K)
        below_start = self.y1 <= py
        spans = below_start != (self.y2 <= py)  # the edge crosses the ray's height
        # upward edges (start below) count with the point on their left, downward ones on their right
        spans &= (side > 0) == below_start
        return np.logical_xor.reduce(spans, axis=0)
