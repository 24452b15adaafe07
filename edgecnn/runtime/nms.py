"""Thresholding, class-aware NMS and the mapping of boxes from the model input back onto
the frame: the one postprocessing every detector head shares (evaluation, parity, the
runtime and the benchmarks call it through `edgecnn.runtime.heads.decode`).

numpy and OpenCV only (OpenCV's NMSBoxesBatched).
"""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from edgecnn.core.preprocess import letterbox_geometry

NMS_IOU = 0.7  # overlap above which a lower-scored box of the same class is dropped (Ultralytics' default)
MAX_DETECTIONS = 100


def to_frame(corners: np.ndarray, input_size: Tuple[int, int], image_size: Tuple[int, int],
             fit: str = "resize") -> np.ndarray:
    """Corner boxes in model-input pixels -> frame pixels, undoing the preprocessing
    ('resize': the whole frame stretched to the input; 'letterbox': scaled to fit and
    padded), clipped to the frame."""
    in_h, in_w = input_size
    img_h, img_w = image_size
    if fit == "letterbox":
        scale, pad_x, pad_y = letterbox_geometry(image_size, input_size)
        corners = (corners - np.array([pad_x, pad_y] * 2, np.float32)) / scale
    else:
        corners = corners * np.array([img_w / in_w, img_h / in_h] * 2, np.float32)
    return np.clip(corners, 0, [img_w, img_h, img_w, img_h])


def select(probabilities: np.ndarray, corners: np.ndarray, conf_threshold: float = 0.25,
           iou_threshold: Optional[float] = NMS_IOU, max_detections: int = MAX_DETECTIONS) -> np.ndarray:
    """Indices of the rows that survive the threshold and class-aware NMS (none when
    iou_threshold is None: the model's own outputs are final), best first."""
    classes = probabilities.argmax(1)
    scores = probabilities[np.arange(len(classes)), classes]
    candidates = np.flatnonzero(scores >= conf_threshold)
    if not len(candidates):
        return candidates
    if iou_threshold is None:
        return candidates[np.argsort(-scores[candidates], kind="stable")[:max_detections]]
    boxes = corners[candidates]
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    # no top_k: OpenCV applies it to the candidates before suppression, which would drop
    # boxes that survive it whenever more than max_detections candidates pass the threshold
    chosen = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores[candidates].tolist(), classes[candidates].tolist(),
                                     conf_threshold, iou_threshold)
    return candidates[np.asarray(chosen, np.int64).reshape(-1)[:max_detections]]
