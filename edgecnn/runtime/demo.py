"""The `demo` source: a moving synthetic scene, so `edgecnn run --source demo` shows a
working detector on any machine, camera or not.

Circles, rectangles and triangles (the bundled detector's classes, drawn with the
same primitives as its training scenes) glide, bounce off the edges and turn over a
textured background. Frame t is a pure function of (seed, t): runs are repeatable.
"""
from __future__ import annotations

from typing import List, Tuple

import cv2
import numpy as np

from edgecnn.core.scenes import DETECTION_SHAPES, random_colour, shape_polygon, textured_background


class DemoCapture:
    """read() -> (True, BGR frame) like cv2.VideoCapture; `fps` sets the motion per frame."""

    def __init__(self, size: int = 384, seed: int = 0, fps: float = 30.0, objects: int = 3) -> None:
        rng = np.random.default_rng([seed, 2024])
        self.size, self.fps, self.t = size, fps, 0
        self.background, mean = textured_background(rng, (size, size))
        self.objects: List[Tuple[str, np.ndarray, np.ndarray, float, float, float, tuple, float]] = []
        for i in range(objects):
            kind = DETECTION_SHAPES[i % len(DETECTION_SHAPES)]
            radius = float(rng.uniform(0.09, 0.16)) * size
            start = rng.uniform(radius, size - radius, 2)
            speed = rng.uniform(0.12, 0.3) * size  # pixels per second
            heading = rng.uniform(0, 2 * np.pi)
            velocity = np.array([np.cos(heading), np.sin(heading)]) * speed
            spin = float(rng.uniform(-1.0, 1.0))  # radians per second
            colour = tuple(float(c) for c in random_colour(rng, mean, 120.0))
            aspect = float(rng.uniform(0.5, 0.9)) if kind == "rectangle" else 1.0
            self.objects.append((kind, start, velocity, radius, spin, float(rng.uniform(0, 6.28)), colour, aspect))

    def scene(self, t: int) -> np.ndarray:
        """Frame number t."""
        seconds = t / self.fps
        image = self.background.copy()
        for kind, start, velocity, radius, spin, angle, colour, aspect in self.objects:
            centre = [_bounce(start[k] + velocity[k] * seconds, radius, self.size - radius) for k in range(2)]
            points = shape_polygon(kind, tuple(centre), radius, angle + spin * seconds, aspect)
            cv2.fillPoly(image, [np.round(points * 16).astype(np.int32)], colour, lineType=cv2.LINE_8, shift=4)
        return image

    def read(self):
        image = self.scene(self.t)
        self.t += 1
        return True, image

    def release(self) -> None:
        pass


def _bounce(position: float, low: float, high: float) -> float:
    """Position on a segment [low, high] travelled back and forth."""
    span = high - low
    offset = (position - low) % (2 * span)
    return low + (offset if offset <= span else 2 * span - offset)
