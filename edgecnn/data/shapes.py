"""Deterministic synthetic shapes: textured backgrounds with filled shapes of random
colour, size, position and rotation. Image i of a split is drawn from a generator
seeded by (seed, split, i), so every run and every machine sees the same pixels.

The drawing primitives live in edgecnn.core.scenes, shared with the detection set
(which needs the exact box of each drawn shape) and the runtime's demo source.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from edgecnn.core.scenes import draw_shape, random_colour, textured_background
from edgecnn.data.base import ClassificationSet, DataInfo

SHAPES = ["circle", "square", "triangle", "star"]
SPLIT_SIZES = {"train": 2000, "val": 400, "test": 400}  # "test": drawn apart, never trained or chosen on
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
INFO = DataInfo(name="shapes", labels=list(SHAPES), color="rgb", default_imgsz=64, hflip=True)


def shapes_image(seed: int, split: str, index: int, size: int = 64) -> Tuple[np.ndarray, int]:
    """One classification sample: a single shape covering 30-80% of the image side."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    label = int(rng.integers(len(SHAPES)))
    image, background = textured_background(rng, (size, size))
    radius = rng.uniform(0.15, 0.4) * size
    centre = tuple(rng.uniform(radius * 0.7, size - radius * 0.7, 2))
    draw_shape(image, SHAPES[label], centre, radius, rng.uniform(0, 2 * np.pi),
               random_colour(rng, background))
    return image, label


def load_shapes(split: str, seed: int = 0, size: int = 64, count: Optional[int] = None) -> ClassificationSet:
    count = SPLIT_SIZES[split] if count is None else count
    samples: List[Tuple[np.ndarray, int]] = [shapes_image(seed, split, i, size) for i in range(count)]
    return ClassificationSet(INFO, split, [s[0] for s in samples], [s[1] for s in samples])
