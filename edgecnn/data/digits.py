"""The real handwritten digits bundled with edgecnn (OpenCV's digits.png, 5000 tiles).

Split: in every row of 100 tiles, every 5th column (col % 5 == 4) is held out, so the
1000 held-out tiles ("val", also called "test") are never trained on; the other 4000
are "train". Each digit has 400 train and 100 held-out samples.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from edgecnn.data.base import ClassificationSet, DataInfo

SHEET = Path(__file__).parent / "assets" / "digits.png"
TILE = 20
INFO = DataInfo(name="digits", labels=[str(d) for d in range(10)], color="gray",
                default_imgsz=32, hflip=False)


@lru_cache(maxsize=1)
def _tiles() -> np.ndarray:
    sheet = cv2.imread(str(SHEET), cv2.IMREAD_GRAYSCALE)
    if sheet is None:
        raise FileNotFoundError(f"bundled digits sheet missing: {SHEET}")
    rows, cols = sheet.shape[0] // TILE, sheet.shape[1] // TILE
    return sheet.reshape(rows, TILE, cols, TILE).swapaxes(1, 2)  # (50, 100, 20, 20)


def load_digits(split: str) -> ClassificationSet:
    tiles = _tiles()
    rows, cols = tiles.shape[:2]
    held_out = split in ("val", "test")
    images, targets = [], []
    for row in range(rows):
        for col in range(cols):
            if (col % 5 == 4) == held_out:
                images.append(np.ascontiguousarray(tiles[row, col]))
                targets.append(row // 5)
    return ClassificationSet(INFO, "val" if held_out else "train", images, targets)
