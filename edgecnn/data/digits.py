"""The real handwritten digits bundled with edgecnn (OpenCV's digits.png, 5000 tiles).

Split: in every row of 100 tiles, every 5th column is held out, so the 1000 held-out
tiles ("val", also called "test") are never trained on; the other 4000 are "train".
Each digit has 400 train and 100 held-out samples. `digits` holds out the columns with
col % 5 == 4; `digits?fold=K` holds out those with col % 5 == K instead, so that a
recipe tuned on the default split can be measured on held-out tiles it was never
tuned on (five disjoint held-out sets, each trained on the other four fifths).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl

import cv2
import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.data.base import ClassificationSet, DataInfo

SHEET = Path(__file__).parent / "assets" / "digits.png"
TILE = 20
FOLDS = 5
DEFAULT_FOLD = 4  # the held-out columns of `digits`
INFO = DataInfo(name="digits", labels=[str(d) for d in range(10)], color="gray",
                default_imgsz=32, hflip=False)


@lru_cache(maxsize=1)
def _tiles() -> np.ndarray:
    sheet = cv2.imread(str(SHEET), cv2.IMREAD_GRAYSCALE)
    if sheet is None:
        raise FileNotFoundError(f"bundled digits sheet missing: {SHEET}")
    rows, cols = sheet.shape[0] // TILE, sheet.shape[1] // TILE
    return sheet.reshape(rows, TILE, cols, TILE).swapaxes(1, 2)  # (50, 100, 20, 20)


def is_digits(spec: str) -> bool:
    return spec == "digits" or spec.startswith("digits?")


def fold_of(spec: str) -> int:
    """The held-out fold a `digits` or `digits?fold=K` spec names (K in 0..4)."""
    if spec == "digits":
        return DEFAULT_FOLD
    options = dict(parse_qsl(spec.partition("?")[2], keep_blank_values=True))
    unknown = sorted(set(options) - {"fold"})
    if unknown or "fold" not in options:
        raise UserError(f"{spec}: the digits take one option, fold=K (K in 0..{FOLDS - 1}); got "
                        f"{', '.join(unknown) or 'none'}")
    value = options["fold"]
    if not value.isdigit() or int(value) >= FOLDS:
        raise UserError(f"{spec}: fold must be an integer in 0..{FOLDS - 1}, got {value!r}")
    return int(value)


def load_digits(split: str, fold: int = DEFAULT_FOLD) -> ClassificationSet:
    tiles = _tiles()
    rows, cols = tiles.shape[:2]
    held_out = split in ("val", "test")
    images, targets = [], []
    for row in range(rows):
        for col in range(cols):
            if (col % FOLDS == fold) == held_out:
                images.append(np.ascontiguousarray(tiles[row, col]))
                targets.append(row // 5)
    return ClassificationSet(INFO, "val" if held_out else "train", images, targets)
