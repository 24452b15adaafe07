"""The segmentation task, torch-free: a model outputs a score map per label, read
into a class per pixel at the frame's size.

Output layouts read (the layout is told by which axis has one entry per label):
- class scores (N, H, W, C) or (N, C, H, W), probabilities or logits: edgecnn's
  segmenters (softmax, channel-last) and DeepLab-style files;
- one probability (or logit) map (N, H, W, 1), (N, 1, H, W) or (N, H, W) for two labels
  (background, object), thresholded at the card's `head.threshold` (default 0.5), as
  person and text-region segmenters output.
- instance masks from a detector head that has them (`head.format`: "yolo-seg",
  Ultralytics' segment models), painted into a label map by the head.
The map covers the model input; with letterbox preprocessing (`head.preprocessing`)
the padding is cropped off before the map is scaled to the frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.core.preprocess import FITS, letterbox_geometry
from edgecnn.core.task import Metric, Task
from edgecnn.runtime.schema import NUMBER_PAIR
from edgecnn.tasks.segment.result import MASK_FORMATS, Masks, is_probability

DEFAULT_THRESHOLD = 0.5  # single-channel probability maps


@dataclass
class SegmentTrainOptions:
    """A segmenter's own training options (`edgecnn train --task segment`); each field's
    metadata holds its command-line settings."""

    progressive_from: Optional[int] = field(default=None, metadata=dict(type=int, metavar="SIZE", help=(
        "progressive resizing, equal stages of epochs at sizes from SIZE up to --imgsz in steps of 32 "
        "(validation is always at --imgsz)")))
    neck: Optional[int] = field(default=None, metadata=dict(type=int, help="channels of the head (default 128)"))
    decoder: Optional[str] = field(default=None, metadata=dict(help=(
        "lraspp (LR-ASPP, the MobileNetV3 paper's head; default) or unet (a small U-Net-style decoder)")))
SEGMENT_FIELDS = {  # a segmenter's frame (edgecnn.tasks.segment.result.Masks.to_dict)
    "size": {**NUMBER_PAIR, "description": "frame height, width in pixels"},
    "areas": {"type": "array", "description": "each label present: its pixels in the frame",
              "items": {"type": "object", "required": ["label", "class_id", "area", "fraction"],
                        "properties": {"label": {"type": "string"}, "class_id": {"type": "integer", "minimum": 0},
                                       "area": {"type": "integer", "minimum": 0},
                                       "fraction": {"type": "number", "minimum": 0, "maximum": 1},
                                       "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
                        "additionalProperties": False}},
    "rle": {"type": "object", "required": ["size", "runs"], "additionalProperties": False,
            "description": "the label map at the model's resolution (scale to the frame by size), row-major runs",
            "properties": {"size": NUMBER_PAIR, "runs": {"type": "array", "items": {"type": "integer"},
                                                          "description": "label, length, label, length, ..."}}},
    "contours": {"type": "array", "description": "outline polygons per label (not the first), frame pixels",
                 "items": {"type": "object", "required": ["label", "class_id", "polygons"],
                           "properties": {"label": {"type": "string"}, "class_id": {"type": "integer"},
                                          "polygons": {"type": "array", "items": {
                                              "type": "array", "items": {"type": "number"},
                                              "description": "x, y, x, y, ..."}}}}},
}


def score_map(card, output: np.ndarray) -> np.ndarray:
    """One image's output (batch dimension kept or not) -> (h, w, channels) float32."""
    scores = np.asarray(output, np.float32)
    if scores.ndim == 4:
        scores = scores[0]
    elif scores.ndim == 3 and scores.shape[0] == 1:  # (1, H, W): one probability map
        scores = scores[0]
    if scores.ndim == 2:
        scores = scores[:, :, None]
    channels = len(card.labels)
    if scores.shape[-1] in (channels, 1) and scores.ndim == 3:
        return scores
    if scores.ndim == 3 and scores.shape[0] in (channels, 1):
        return np.ascontiguousarray(scores.transpose(1, 2, 0))
    raise UserError(f"a segmenter with {channels} labels should output (1, H, W, {channels}) or (1, {channels}, H, W) "
                    f"scores, or one probability map for 2 labels; got {tuple(np.shape(output))}")


def content_window(card, image_size: Tuple[int, int], map_size: Tuple[int, int]) -> Tuple[slice, slice]:
    """The part of a score map that covers the frame (all of it, unless letterboxed)."""
    if card.head.get("preprocessing", "resize") != "letterbox":
        return slice(None), slice(None)
    scale, pad_x, pad_y = letterbox_geometry(image_size, card.input_size)
    (in_h, in_w), (map_h, map_w) = card.input_size, map_size
    width, height = image_size[1] * scale, image_size[0] * scale
    sx, sy = map_w / in_w, map_h / in_h
    rows = slice(int(round(pad_y * sy)), max(int(round(pad_y * sy)) + 1, int(round((pad_y + height) * sy))))
    cols = slice(int(round(pad_x * sx)), max(int(round(pad_x * sx)) + 1, int(round((pad_x + width) * sx))))
    return rows, cols


def classify_pixels(card, scores: np.ndarray) -> np.ndarray:
    """(h, w, channels) scores -> (h, w) uint8 label map: the argmax of class scores, or
    one map thresholded (probabilities at the threshold, logits at its logit)."""
    if scores.shape[-1] != 1:
        return scores.argmax(-1).astype(np.uint8)
    threshold = float(card.head.get("threshold", DEFAULT_THRESHOLD))
    if not is_probability(scores):  # logits: sigmoid(x) >= t  <=>  x >= logit(t)
        threshold = float(np.log(threshold / (1 - threshold)))
    return (scores[..., 0] >= threshold).astype(np.uint8)


def instance_head(card):
    """The head whose instance masks make the label map, or None for score maps."""
    if "format" not in card.head:
        return None
    from edgecnn.runtime.heads import head_of

    return head_of(card)


def paint_instances(card, kept) -> np.ndarray:
    """(H, W) uint8 labels over the model input from a head's kept instances (best
    first, with masks): background, then each instance's class (label = class + 1,
    "background" being label 0), the most confident instance winning a pixel."""
    height, width = card.input_size
    labels = np.zeros((height, width), np.uint8)
    if not len(kept):
        return labels
    for mask, label in zip(kept.masks, kept.scores.argmax(1).astype(np.uint8) + 1):
        labels[mask & (labels == 0)] = label
    return labels


def instance_label_map(card, outputs: Sequence[np.ndarray], conf: Optional[float] = None,
                       iou: Optional[float] = None) -> np.ndarray:
    """An instance head's label map over the model input (the head's own threshold when
    none is given)."""
    from edgecnn.runtime.heads import decode

    return paint_instances(card, decode(card, outputs, conf, iou))


def label_map_of(card, outputs: Sequence[np.ndarray]) -> np.ndarray:
    """ONE image's label map at the model's resolution (padding kept): what parity compares."""
    if instance_head(card) is not None:
        return instance_label_map(card, outputs)
    return classify_pixels(card, score_map(card, outputs[0]))


def segment(card, outputs: Sequence[np.ndarray], image_size: Tuple[int, int], conf: Optional[float] = None,
            iou: Optional[float] = None) -> Masks:
    """Outputs of ONE image -> Masks at the frame's size (what evaluation, parity and the
    runtime all call). `conf` and `iou` apply to instance heads only (their defaults:
    the head's)."""
    if instance_head(card) is not None:
        labels = instance_label_map(card, outputs, conf, iou)
        rows, cols = content_window(card, image_size, labels.shape)
        return Masks(np.ascontiguousarray(labels[rows, cols]), tuple(int(v) for v in image_size), card.labels)
    scores = score_map(card, outputs[0])
    rows, cols = content_window(card, image_size, scores.shape[:2])
    scores = scores[rows, cols]
    return Masks(classify_pixels(card, scores), tuple(int(v) for v in image_size), card.labels, scores=scores)


class SegmentTask(Task):
    name = "segment"
    people_name = "segmenters"
    primary_metric = "miou"
    metric_label = "mIoU"
    metrics = {"miou": Metric("mIoU"), "pixel_accuracy": Metric("pixel accuracy")}
    has_masks = True
    train_options = SegmentTrainOptions
    record_options = {"masks": dict(default="rle", choices=MASK_FORMATS, help="segmenters: what each record carries "
                                    "besides per-label areas: the label map run-length encoded (default), its "
                                    "outline polygons, or none")}

    def schema_fields(self) -> Dict:
        return SEGMENT_FIELDS
    default_data = "shapes"
    default_width = 1.0
    agreement_kind = "pixel agreement"

    def check_card(self, card) -> List[str]:
        fit = card.head.get("preprocessing", "resize")
        problems = [] if fit in FITS else [f"segmenter preprocessing must be one of {FITS}, got {fit!r}"]
        threshold = card.head.get("threshold", DEFAULT_THRESHOLD)
        if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            problems.append(f"a segmenter's threshold is a probability in (0, 1), got {threshold!r}")
        return problems

    def preprocessing(self, card) -> str:
        return card.head.get("preprocessing", "resize")

    def check_outputs(self, card, shapes, model_name: str) -> None:
        head = instance_head(card)
        if head is not None:
            if not head.has_masks:
                raise UserError(f"{model_name}: its head {head.name} makes boxes, not masks: it is a detector "
                                f"(--task detect), not a segmenter")
            head.check(card, shapes, model_name)
            return
        labels = len(card.labels)
        shape = tuple(int(v) for v in shapes[0]) if len(shapes) == 1 else ()
        fits = False
        if len(shape) == 4 and shape[0] == 1:
            fits = labels in (shape[1], shape[3]) or (labels == 2 and 1 in (shape[1], shape[3]))
        elif len(shape) == 3 and shape[0] == 1:
            fits = labels == 2  # one (1, H, W) probability map
        if not fits:
            raise UserError(f"{model_name}: a segmenter with {labels} labels should output one (1, H, W, {labels}) "
                            f"or (1, {labels}, H, W) score map (or, for 2 labels, one probability map); the model "
                            f"outputs {[tuple(s) for s in shapes]}; check --labels/--task")

    def interpret(self, card, outputs, image_size, *, conf: float, iou: float, max_results: int = 100) -> Masks:
        return segment(card, outputs, image_size, conf, iou)

    def agreement(self, card, reference, converted, image_sizes) -> float:
        """Share of pixels given the same label by both models (at the models' resolution)."""
        same = total = 0
        for row in range(len(image_sizes)):
            a, b = (label_map_of(card, [o[row:row + 1] for o in outputs]) for outputs in (reference, converted))
            same += int(np.count_nonzero(a == b))
            total += a.size
        return same / max(1, total)

    def output_names(self, card, count: int) -> List[str]:
        return ["scores"]

    def card_defaults(self) -> Dict:
        return {}


TASK = SegmentTask()
