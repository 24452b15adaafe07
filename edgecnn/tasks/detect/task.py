"""The detection task, torch-free: a model's outputs are read by its head
(edgecnn/runtime/heads), then thresholded, NMS'd and mapped onto the frame."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from edgecnn.core.task import Metric, Task
from edgecnn.runtime.heads import DEFAULT_HEAD, decode, get_head, head_names, head_of
from edgecnn.runtime.nms import MAX_DETECTIONS, NMS_IOU, select, to_frame
from edgecnn.runtime.schema import DETECTION
from edgecnn.tasks.detect.result import Detections

BOX_MATCH_IOU = 0.5  # parity: two models found the same object
PROGRESSIVE_HELP = ("progressive resizing, equal stages of epochs at sizes from SIZE up to --imgsz in steps of 32 "
                    "(validation is always at --imgsz)")


@dataclass
class DetectTrainOptions:
    """A detector's own training options (`edgecnn train --task detect`); each field's
    metadata holds its command-line settings."""

    progressive_from: Optional[int] = field(default=None, metadata=dict(type=int, metavar="SIZE",
                                                                        help=PROGRESSIVE_HELP))
    neck: Optional[int] = field(default=None, metadata=dict(type=int, help="channels of the neck and head "
                                                            "(default 128)"))
    tap: Optional[str] = field(default=None, metadata=dict(choices=["expansion", "block"], help=(
        "where the neck taps a MobileNetV2 at strides 8 and 16: the wide expansion of the next stride-2 block "
        "(SSDLite) or the block outputs (default block)")))
    mosaic: float = field(default=0.0, metadata=dict(type=float, metavar="P", help=(
        "probability that a training image is a mosaic of four (default 0)")))
    close_mosaic: int = field(default=10, metadata=dict(type=int, metavar="N", help="no mosaics in the last N "
                                                        "epochs (default 10)"))


def to_detections(boxes: np.ndarray, probabilities: np.ndarray, labels: List[str], input_size: Tuple[int, int],
                  image_size: Tuple[int, int], fit: str = "resize") -> Detections:
    """Kept rows (corner boxes in input pixels, per-class scores) -> Detections in frame
    pixels: each row's best class and its score, the box mapped back onto the frame."""
    classes = probabilities.argmax(1) if len(probabilities) else np.zeros(0, np.int64)
    scores = probabilities[np.arange(len(classes)), classes] if len(classes) else np.zeros(0, np.float32)
    corners = to_frame(boxes.reshape(-1, 4), input_size, image_size, fit)
    return Detections(corners.astype(np.float32), scores.astype(np.float32), classes.astype(np.int64), labels)


def postprocess(corners: np.ndarray, probabilities: np.ndarray, labels: List[str],
                input_size: Tuple[int, int], image_size: Tuple[int, int], conf_threshold: float = 0.25,
                iou_threshold: Optional[float] = NMS_IOU, max_detections: int = MAX_DETECTIONS,
                fit: str = "resize") -> Detections:
    """(cells, 4) corner boxes in input pixels and (cells, classes) scores -> Detections
    in frame pixels: the shared threshold and NMS (`select`), then mapped back."""
    chosen = select(probabilities, corners, conf_threshold, iou_threshold, max_detections)
    return to_detections(corners[chosen], probabilities[chosen], labels, input_size, image_size, fit)


def detect(card, outputs, image_size: Tuple[int, int], conf: float = 0.25, iou: Optional[float] = None,
           max_detections: Optional[int] = None) -> Detections:
    """Outputs of ONE image -> Detections in frame pixels: the head's decode with the
    shared threshold and NMS, then mapped back."""
    kept = decode(card, outputs, conf, iou, max_detections)
    return to_detections(kept.boxes, kept.scores, card.labels, card.input_size, image_size,
                         head_of(card).preprocessing)


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
    people_name = "detectors"
    primary_metric = "map50_95"
    metric_label = "mAP@0.5:0.95"
    metrics = {"map50_95": Metric("mAP@0.5:0.95"), "map50": Metric("mAP@0.5")}
    trackable = True
    train_options = DetectTrainOptions
    default_data = "shapes"
    default_width = 0.5
    agreement_kind = "matched-box agreement"

    def card_defaults(self) -> Dict:
        return {"head": get_head(DEFAULT_HEAD).config("")}

    def schema_fields(self) -> Dict:
        return {"detections": {"type": "array", "items": DETECTION}}

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
