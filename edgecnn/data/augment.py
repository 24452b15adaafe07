"""Training-time augmentation on OpenCV images, applied before the one shared
preprocessing step. Randomness comes from a generator the caller seeds per
(seed, epoch, index), so a resumed run draws exactly the same augmentations."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class ClassifyAugment:
    """Small affine jitter, optional horizontal flip and brightness/contrast jitter."""

    degrees: float = 10.0
    translate: float = 0.1  # fraction of the image side
    scale: tuple = (0.9, 1.1)
    hflip: bool = False
    brightness: float = 0.2  # +-20% of full range
    contrast: float = 0.2

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = image.shape[:2]
        angle = rng.uniform(-self.degrees, self.degrees)
        zoom = rng.uniform(*self.scale)
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, zoom)
        matrix[:, 2] += rng.uniform(-self.translate, self.translate, 2) * (width, height)
        image = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        if self.hflip and rng.random() < 0.5:
            image = cv2.flip(image, 1)
        if self.brightness or self.contrast:
            alpha = 1.0 + rng.uniform(-self.contrast, self.contrast)
            beta = 255.0 * rng.uniform(-self.brightness, self.brightness)
            mean = float(image.mean())
            image = cv2.convertScaleAbs(image, alpha=alpha, beta=beta + mean * (1 - alpha))
        return image
