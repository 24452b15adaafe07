"""The detection task, torch-free: a model's outputs are read by its head
(edgecnn/runtime/heads), then thresholded, NMS'd and mapped onto the frame."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from edgecnn.runtime.heads import DEFAULT_HEAD, detect, get_head, head_names, head_of
from edgecnn.tasks import Task
from edgecnn.tasks.detect.result import Detections

BOX_MATCH_IOU = 0.5  # parity: two models found the same object


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x1, y1, x2, y2) box with each of `boxes`."""
    if not len(boxes):
        return np.zeros(0, np.float32)
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    overlap = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - overlap
    return overlap / np.maximum(union, 1e-9)


def matched(a: Detections, b: Detections, min_iou: float = BOX_MATCH_IOU) -> int:
    """Boxes of `a` with a same-class box of `b` at IoU >= min_iou (each used once)."""
    used, count = set(), 0
    for box, cls in zip(a.boxes, a.classes):
        ious = box_iou(box, b.boxes)
        for j in np.argsort(-ious):
            if ious[j] < min_iou:
                break
            if j not in used and b.classes[j] == cls:
                used.add(j)
                count += 1
                break
    return count


class DetectTask(Task):
    name = "detect"
    primary_metric = "map50_95"
    metric_label = "mAP@0.5:0.95"
    default_data = "shapes"
    default_width = 0.5
    agreement_kind = "matched-box agreement"

    def card_defaults(self) -> Dict:
        return {"head": get_head(DEFAULT_HEAD).config("")}

    def check_card(self, card) -> List[str]:
        name = card.head.get("format")
        if name is not None and name not in head_names():
            return [f"detector output format {name!r} is not supported (supported: {', '.join(head_names())})"]
        return []

    def missing_flags(self, given: Dict) -> List[str]:
        return [] if "head" in given else [f"--head (detector output format: {', '.join(head_names())})"]

    def preprocessing(self, card) -> str:
        return head_of(card).preprocessing

    def check_outputs(self, card, shapes, model_name: str) -> None:
        head_of(card).check(card, shapes, model_name)

    def interpret(self, card, outputs, image_size, *, conf: float, iou: float, max_results: int = 100) -> Detections:
        return detect(card, outputs, image_size, conf, iou, max_results)

    def agreement(self, card, reference, converted, image_sizes) -> float:
        """Share of boxes found by both models (same class, IoU >= 0.5) among all found."""
        found = total = 0
        for row, size in enumerate(image_sizes):
            a, b = (detect(card, [o[row] for o in outputs], size) for outputs in (reference, converted))
            total += max(len(a), len(b))
            found += matched(a, b)
        return 1.0 if total == 0 else found / total

    def output_names(self, card, count: int) -> List[str]:
        return head_of(card).output_names(card)


TASK = DetectTask()
