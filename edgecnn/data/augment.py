"""Training-time augmentation on OpenCV images, applied before the one shared
preprocessing step. Randomness comes from a generator the caller seeds per
(seed, epoch, index), so a resumed run draws exactly the same augmentations."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np


def elastic(image: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """Elastic distortion (Simard et al., 2003): a smooth random displacement field.

    alpha and sigma are fractions of the image side, so the warp looks the same at
    any resolution.
    """
    height, width = image.shape[:2]
    side = max(height, width)
    field = rng.uniform(-1, 1, (2, height, width)).astype(np.float32)
    dx, dy = (cv2.GaussianBlur(f, (0, 0), sigma * side) for f in field)
    dx *= alpha * side / (dx.std() + 1e-6)  # normalised: alpha is the displacement's std
    dy *= alpha * side / (dy.std() + 1e-6)
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


@dataclass
class ClassifyAugment:
    """Affine jitter (rotation, scale, shear, shift), elastic warp, optional horizontal
    flip and brightness/contrast jitter."""

    degrees: float = 12.0
    translate: float = 0.1  # fraction of the image side
    scale: tuple = (0.85, 1.15)
    shear: float = 10.0  # degrees
    elastic_p: float = 0.5
    elastic_alpha: float = 0.04  # typical displacement, fraction of the side
    elastic_sigma: float = 0.15
    hflip: bool = False
    brightness: float = 0.2  # +-20% of full range
    contrast: float = 0.2

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-self.degrees, self.degrees),
                                         rng.uniform(*self.scale))
        shear = np.tan(np.radians(rng.uniform(-self.shear, self.shear)))
        shear_matrix = np.array([[1, shear, -shear * height / 2], [0, 1, 0], [0, 0, 1]])
        matrix = (np.vstack([matrix, [0, 0, 1]]) @ shear_matrix)[:2]
        matrix[:, 2] += rng.uniform(-self.translate, self.translate, 2) * (width, height)
        image = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        if self.elastic_p and rng.random() < self.elastic_p:
            image = elastic(image, rng, self.elastic_alpha, self.elastic_sigma)
        if self.hflip and rng.random() < 0.5:
            image = cv2.flip(image, 1)
        if self.brightness or self.contrast:
            alpha = 1.0 + rng.uniform(-self.contrast, self.contrast)
            beta = 255.0 * rng.uniform(-self.brightness, self.brightness)
            mean = float(image.mean())
            image = cv2.convertScaleAbs(image, alpha=alpha, beta=beta + mean * (1 - alpha))
        return image


@dataclass
class DetectAugment:
    """Box-preserving augmentation: random scale and shift (a zoom in or out with crop
    or grey padding), horizontal flip, and HSV colour jitter. Boxes follow the pixels;
    a box pushed mostly out of the frame is dropped."""

    scale: tuple = (0.75, 1.25)
    translate: float = 0.1  # fraction of the image side
    hflip: bool = True
    hue: float = 0.015  # fraction of the hue circle
    saturation: float = 0.5
    value: float = 0.3
    min_visible: float = 0.35  # keep a box only if this much of it stays in frame
    pad_value: int = 114

    def affine(self, image, boxes, rng):
        height, width = image.shape[:2]
        zoom = rng.uniform(*self.scale)
        shift = rng.uniform(-self.translate, self.translate, 2) * (width, height)
        matrix = np.array([[zoom, 0, (1 - zoom) * width / 2 + shift[0]],
                           [0, zoom, (1 - zoom) * height / 2 + shift[1]]], np.float64)
        image = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(self.pad_value,) * 3)
        moved = boxes * zoom + np.tile(matrix[:, 2], 2)
        return image, moved

    def flip(self, image, boxes):
        width = image.shape[1]
        flipped = boxes.copy()
        flipped[:, [0, 2]] = width - boxes[:, [2, 0]]
        return cv2.flip(image, 1), flipped

    def colour(self, image, rng):
        if image.ndim == 2:
            gain = 1 + rng.uniform(-self.value, self.value)
            return cv2.convertScaleAbs(image, alpha=gain)
        gains = 1 + rng.uniform(-1, 1, 3) * (self.hue, self.saturation, self.value)
        hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
        lut = np.arange(256, dtype=np.float64)
        hue = cv2.LUT(hue, ((lut * gains[0]) % 180).astype(np.uint8))
        sat = cv2.LUT(sat, np.clip(lut * gains[1], 0, 255).astype(np.uint8))
        val = cv2.LUT(val, np.clip(lut * gains[2], 0, 255).astype(np.uint8))
        return cv2.cvtColor(cv2.merge([hue, sat, val]), cv2.COLOR_HSV2BGR)

    def __call__(self, image, boxes, classes, rng):
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        image, moved = self.affine(image, boxes, rng)
        height, width = image.shape[:2]
        boxes, keep = keep_visible(moved, width, height, self.min_visible)
        return self.finish(image, boxes[keep], np.asarray(classes)[keep], rng)

    def finish(self, image, boxes, classes, rng):
        """The steps after the geometry (which a mosaic replaces): flip and colour."""
        if self.hflip and rng.random() < 0.5:
            image, boxes = self.flip(image, boxes)
        return self.colour(image, rng), boxes, classes


def keep_visible(moved: np.ndarray, width: int, height: int, min_visible: float) -> Tuple[np.ndarray, np.ndarray]:
    """Clip moved boxes to the frame; keep those with at least `min_visible` of their area
    (and 2 px a side) inside. Returns (clipped boxes, kept mask)."""
    clipped = np.clip(moved, 0, [width, height, width, height])
    area = lambda b: np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    keep = (area(clipped) >= min_visible * np.maximum(area(moved), 1e-6)) & \
           (clipped[:, 2] - clipped[:, 0] >= 2) & (clipped[:, 3] - clipped[:, 1] >= 2)
    return clipped.astype(np.float32), keep


def mosaic(samples, rng: np.random.Generator, size: int, scale: tuple = (0.5, 1.0), min_visible: float = 0.35,
           pad_value: int = 114):
    """Mosaic (YOLOv4): four (image, boxes, classes) samples tiled around a random centre
    of a 2x canvas, then a `size` x `size` view of it around that centre, zoomed by a
    factor from `scale` (0.5 shows all four images at half size). Each frame then shows
    more objects, more of them small or cut by an edge, in unseen company."""
    canvas = np.full((2 * size, 2 * size) + samples[0][0].shape[2:], pad_value, np.uint8)
    centre_x, centre_y = rng.uniform(0.5 * size, 1.5 * size, 2)
    all_boxes, all_classes = [], []
    for quadrant, (image, boxes, classes) in enumerate(samples):
        ratio = size / max(image.shape[:2])
        image = cv2.resize(image, (max(1, round(image.shape[1] * ratio)), max(1, round(image.shape[0] * ratio))),
                           interpolation=cv2.INTER_LINEAR)
        height, width = image.shape[:2]
        # the image's corner that touches the centre: bottom-right, bottom-left, top-right, top-left
        left = int(centre_x) - width if quadrant in (0, 2) else int(centre_x)
        top = int(centre_y) - height if quadrant in (0, 1) else int(centre_y)
        x1, y1 = max(left, 0), max(top, 0)
        x2, y2 = min(left + width, 2 * size), min(top + height, 2 * size)
        canvas[y1:y2, x1:x2] = image[y1 - top:y2 - top, x1 - left:x2 - left]
        placed = np.asarray(boxes, np.float32).reshape(-1, 4) * ratio + np.array([left, top, left, top], np.float32)
        clipped, keep = keep_visible(placed - np.array([x1, y1, x1, y1], np.float32), x2 - x1, y2 - y1, min_visible)
        all_boxes.append(clipped[keep] + np.array([x1, y1, x1, y1], np.float32))
        all_classes.append(np.asarray(classes)[keep])
    zoom = rng.uniform(*scale)
    matrix = np.array([[zoom, 0, size / 2 - zoom * centre_x], [0, zoom, size / 2 - zoom * centre_y]], np.float64)
    image = cv2.warpAffine(canvas, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=(pad_value,) * 3)
    moved = np.concatenate(all_boxes) * zoom + np.tile(matrix[:, 2], 2).astype(np.float32)
    boxes, keep = keep_visible(moved, size, size, min_visible)
    return image, boxes[keep], np.concatenate(all_classes)[keep].astype(np.int64)
