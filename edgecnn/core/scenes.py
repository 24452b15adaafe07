"""Drawing primitives of the synthetic shapes scenes: textured backgrounds and filled
shapes. Torch-free, so the device runtime's demo source draws exactly what the
training sets (edgecnn.data.shapes, edgecnn.data.detection) draw.
"""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

DETECTION_SHAPES = ["circle", "rectangle", "triangle"]  # the classes of the shapes detection scenes


def random_colour(rng: np.random.Generator, avoid: Optional[np.ndarray] = None,
                  min_distance: float = 90.0) -> np.ndarray:
    """A BGR colour at least `min_distance` (Euclidean, 0..255 units) from `avoid`."""
    while True:
        colour = rng.integers(0, 256, 3).astype(np.float64)
        if avoid is None or np.linalg.norm(colour - avoid) >= min_distance:
            return colour


def textured_background(rng: np.random.Generator, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """A gradient, a few random lines and Gaussian noise; returns (image, mean colour)."""
    height, width = size
    start, end = random_colour(rng), random_colour(rng)
    ramp = np.linspace(0.0, 1.0, width if rng.random() < 0.5 else height)
    ramp = ramp[None, :, None] if ramp.size == width else ramp[:, None, None]
    image = start * (1 - ramp) + end * ramp
    image = np.broadcast_to(image, (height, width, 3)).astype(np.float32).copy()
    for _ in range(int(rng.integers(0, 6))):
        p1 = tuple(int(v) for v in rng.integers(0, [width, height]))
        p2 = tuple(int(v) for v in rng.integers(0, [width, height]))
        cv2.line(image, p1, p2, tuple(float(c) for c in random_colour(rng)), int(rng.integers(1, 3)))
    image += rng.normal(0.0, rng.uniform(3.0, 12.0), image.shape).astype(np.float32)
    mean = image.reshape(-1, 3).mean(0)
    return np.clip(image, 0, 255).astype(np.uint8), mean


def shape_polygon(kind: str, centre: Tuple[float, float], radius: float, angle: float,
                  aspect: float = 1.0) -> np.ndarray:
    """Outline points (N, 2) of a shape with circumradius `radius`, rotated by `angle`
    (rectangles: half-width `radius`, half-height `radius * aspect`)."""
    if kind == "rectangle":
        corners = np.array([[-1, -aspect], [1, -aspect], [1, aspect], [-1, aspect]]) * radius
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return corners @ rotation.T + np.asarray(centre)
    if kind == "circle":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        radii = np.full_like(t, radius)
    elif kind == "square":
        t = np.arange(4) * np.pi / 2 + np.pi / 4
        radii = np.full_like(t, radius)
    elif kind == "triangle":
        t = np.arange(3) * 2 * np.pi / 3 - np.pi / 2
        radii = np.full_like(t, radius)
    elif kind == "star":
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
    else:
        raise ValueError(f"unknown shape {kind!r}")
    if kind != "circle":
        t = t + angle
    return np.stack([centre[0] + radii * np.cos(t), centre[1] + radii * np.sin(t)], axis=1)


def draw_shape(image: np.ndarray, kind: str, centre: Tuple[float, float], radius: float,
               angle: float, colour, aspect: float = 1.0) -> np.ndarray:
    """Fill the shape in place; returns its outline points."""
    points = shape_polygon(kind, centre, radius, angle, aspect)
    cv2.fillPoly(image, [np.round(points * 16).astype(np.int32)], tuple(float(c) for c in np.atleast_1d(colour)),
                 lineType=cv2.LINE_AA, shift=4)
    return points
