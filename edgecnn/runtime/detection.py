"""Detector output decoding and NMS, shared by the evaluator and the device runtime.

numpy and OpenCV only. The model emits, per stride level, normalised side distances
(left, top, right, bottom as fractions of the input size) and class probabilities;
`decode` turns them into corner boxes in input pixels, `postprocess` thresholds,
runs class-aware NMS (OpenCV's NMSBoxesBatched) and maps boxes back onto the
original image.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import List, Sequence, Tuple

import cv2
import numpy as np


def level_shape(input_size: Tuple[int, int], stride: int) -> Tuple[int, int]:
    """Feature-map size at `stride`: every stride-2 conv (k3, p1) rounds up."""
    height, width = input_size
    for _ in range(int(np.log2(stride))):
        height, width = (height + 1) // 2, (width + 1) // 2
    return height, width


@lru_cache(maxsize=16)
def cell_centres(input_size: Tuple[int, int], strides: Tuple[int, ...]) -> np.ndarray:
    """(cells, 2) centre (x, y) of every output cell in input pixels, level by level,
    row-major within a level: the order of the model's flattened outputs."""
    centres = []
    for stride in strides:
        height, width = level_shape(input_size, stride)
        ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        centres.append(np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], 1))
    return np.concatenate(centres).astype(np.float32)


def decode(boxes: Sequence[np.ndarray], scores: Sequence[np.ndarray], input_size: Tuple[int, int],
           strides: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Per-level outputs of ONE image -> (cells, 4) corner boxes in input pixels and
    (cells, classes) scores."""
    distances = np.concatenate([np.asarray(b, np.float32).reshape(-1, 4) for b in boxes])
    probabilities = np.concatenate([np.asarray(s, np.float32).reshape(len(b.reshape(-1, 4)), -1)
                                    for b, s in zip(boxes, scores)])
    centres = cell_centres(tuple(input_size), tuple(strides))
    if len(centres) != len(distances):
        raise ValueError(f"model outputs {len(distances)} cells, expected {len(centres)} for input "
                         f"{input_size[0]}x{input_size[1]} at strides {list(strides)}")
    height, width = input_size
    scale = np.array([width, height, width, height], np.float32)
    d = distances * scale
    corners = np.concatenate([centres - d[:, :2], centres + d[:, 2:]], 1)
    return corners, probabilities


@dataclass
class Detections:
    """Boxes (x1, y1, x2, y2) in original-image pixels, scores and class indices."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    labels: List[str]

    def __len__(self) -> int:
        return len(self.scores)

    def to_dict(self) -> dict:
        return {"detections": [
            {"label": self.labels[c], "class_id": int(c), "score": round(float(s), 4),
             "box": [round(float(v), 1) for v in b]}
            for b, s, c in zip(self.boxes, self.scores, self.classes)]}


NMS_IOU = 0.7  # overlap above which a lower-scored box of the same class is dropped (Ultralytics' default)


def postprocess(corners: np.ndarray, probabilities: np.ndarray, labels: List[str],
                input_size: Tuple[int, int], image_size: Tuple[int, int], conf_threshold: float = 0.25,
                iou_threshold: float = NMS_IOU, max_detections: int = 100) -> Detections:
    """Threshold, class-aware NMS, and map boxes from the model input onto the image
    (the input was a plain resize of the whole image)."""
    classes = probabilities.argmax(1)
    scores = probabilities[np.arange(len(classes)), classes]
    keep = scores >= conf_threshold
    corners, scores, classes = corners[keep], scores[keep], classes[keep]
    if len(scores):
        xywh = np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], 1)
        chosen = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), classes.tolist(), conf_threshold,
                                         iou_threshold, top_k=max_detections)
        chosen = np.asarray(chosen, np.int64).reshape(-1)[:max_detections]
        corners, scores, classes = corners[chosen], scores[chosen], classes[chosen]
    in_h, in_w = input_size
    img_h, img_w = image_size
    corners = corners * np.array([img_w / in_w, img_h / in_h] * 2, np.float32)
    corners = np.clip(corners, 0, [img_w, img_h, img_w, img_h])
    return Detections(corners.astype(np.float32), scores.astype(np.float32), classes.astype(np.int64), labels)
