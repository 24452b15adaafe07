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

    def _polygons(self, t: int) -> List[np.ndarray]:
        """Each object's outline at frame t, in drawing order (later ones cover earlier)."""
        seconds = t / self.fps
        polygons = []
        for kind, start, velocity, radius, spin, angle, colour, aspect in self.objects:
            centre = [_bounce(start[k] + velocity[k] * seconds, radius, self.size - radius) for k in range(2)]
            polygons.append(shape_polygon(kind, tuple(centre), radius, angle + spin * seconds, aspect))
        return polygons

    def scene(self, t: int) -> np.ndarray:
        """Frame number t."""
        image = self.background.copy()
        for points, (kind, *_, colour, aspect) in zip(self._polygons(t), self.objects):
            cv2.fillPoly(image, [np.round(points * 16).astype(np.int32)], colour, lineType=cv2.LINE_8, shift=4)
        return image

    def ground_truth(self, t: int) -> List[Tuple[int, str, Tuple[float, float, float, float], float]]:
        """Frame t's objects: (track id from 1, class, box x1 y1 x2 y2, visibility), the
        visibility being the fraction of the object's pixels that no later-drawn object
        covers: what a tracking benchmark scores against (MOTChallenge's gt.txt)."""
        masks = []
        for points in self._polygons(t):
            mask = np.zeros((self.size, self.size), np.uint8)
            cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
            masks.append(mask.astype(bool))
        truth = []
        for i, (points, mask) in enumerate(zip(self._polygons(t), masks)):
            covered = np.logical_or.reduce(masks[i + 1:]) if i + 1 < len(masks) else np.zeros_like(mask)
            area = int(mask.sum())
            visible = float((mask & ~covered).sum() / area) if area else 0.0
            x1, y1 = np.clip(points.min(axis=0), 0, self.size)
            x2, y2 = np.clip(points.max(axis=0), 0, self.size)
            truth.append((i + 1, self.objects[i][0], (float(x1), float(y1), float(x2), float(y2)), visible))
        return truth

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
