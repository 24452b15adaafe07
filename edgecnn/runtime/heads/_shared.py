"""Helpers several heads share, so that no head imports another (an import-linter
contract keeps head modules independent)."""
from __future__ import annotations

import numpy as np

YOLO_V5_ANCHORS_PER_CELL = 3  # YOLOv5's anchors at each grid cell (and its end-to-end exports')


def cxcywh_to_corners(boxes: np.ndarray) -> np.ndarray:
    half = boxes[:, 2:4] * 0.5
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], 1)


def one_hot_scores(scores: np.ndarray, classes: np.ndarray, count: int) -> np.ndarray:
    """Final detections (score, class index) as the per-class score rows the shared
    postprocessing takes; rows naming a class beyond the labels are zero."""
    table = np.zeros((len(scores), count), np.float32)
    known = (classes >= 0) & (classes < count)
    table[np.flatnonzero(known), classes[known]] = scores[known]
    return table
