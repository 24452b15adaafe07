"""Ultralytics YOLOv8 / YOLO11 segment output ("yolo-seg"), read as a semantic
segmenter (the segment task's class per pixel).

Two outputs:
- a table [1, 4+nc+nm, A] (or transposed [1, A, 4+nc+nm]) over the A anchor points:
  cx, cy, w, h, nc class scores (already sigmoided, no objectness), then nm mask
  coefficients (32 by default); boxes in input pixels in ONNX files, normalised in
  TFLite ones;
- prototypes at stride 4, [1, nm, H/4, W/4] in ONNX files, [1, H/4, W/4, nm] in TFLite
  ones (whose exporter also puts this output first).

Each instance that survives the threshold and the shared NMS gets the mask
sigmoid(coefficients . prototypes), scaled up bilinearly to the input, cut to its box
and thresholded at 0.5. The label map paints background, then each instance's class
(label = class + 1, "background" being label 0), the most confident instance winning a
pixel. Inputs are letterboxed (pad 114), RGB, pixel / 255.

Card entry: {"format": "yolo-seg", "boxes": "pixels" | "normalised",
"preprocessing": "letterbox"}; the card's labels are "background" and the classes.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.heads import Decoded, Head
from edgecnn.runtime.heads._shared import cxcywh_to_corners
from edgecnn.runtime.recognition import (FileFacts, box_scale_of, check_metadata_size, grid_cells, labels_for,
                                         parse_box_scale, yolo_strides)

PROTO_STRIDE = 4
DEFAULT_CONF = 0.25  # what a label map is read at when no threshold is given (Ultralytics' predict default)
BACKGROUND = "background"


def proto_layout(shape: Tuple[int, ...], input_size: Tuple[int, int], file_format: str) -> Optional[Tuple[str, int]]:
    """('nchw' | 'nhwc', mask coefficients) of a prototype output at stride 4, or None."""
    if len(shape) != 4 or shape[0] != 1:
        return None
    grid = tuple(-(-side // PROTO_STRIDE) for side in input_size)
    first, last = tuple(shape[2:]) == grid, tuple(shape[1:3]) == grid
    if first and last:  # square prototypes with as many coefficients as rows: the exporter's habit decides
        first = file_format == "onnx"
    if first:
        return "nchw", int(shape[1])
    if last:
        return "nhwc", int(shape[3])
    return None


def split_outputs(shapes: Sequence[Tuple[int, ...]], input_size: Tuple[int, int], file_format: str):
    """(table index, prototype index, prototype layout, coefficients) of a file's two
    outputs, or None when they are not a YOLO-seg pair."""
    if len(shapes) != 2:
        return None
    for table, protos in ((0, 1), (1, 0)):
        layout = proto_layout(tuple(shapes[protos]), input_size, file_format)
        if layout is not None and len(shapes[table]) == 3 and shapes[table][0] == 1:
            return table, protos, *layout
    return None


class YoloSeg(Head):
    name = "yolo-seg"
    preprocessing = "letterbox"
    has_masks = True
    default_conf = DEFAULT_CONF

    def config(self, arguments: str) -> Dict:
        return {"format": self.name, "preprocessing": "letterbox", **parse_box_scale(arguments)}

    def _layout(self, card, shapes, model_name: str):
        """(table index, prototype index, prototype layout, coefficients), checked against
        the card's labels."""
        file_format = "tflite" if card.head.get("boxes") == "normalised" else "onnx"
        found = split_outputs([tuple(s) for s in shapes], tuple(card.input_size), file_format)
        classes = len(card.labels) - 1
        if found is not None:
            width = 4 + classes + found[3]
            if width in tuple(shapes[found[0]][1:]):
                return found
        raise UserError(f"{model_name}: a yolo-seg head with {classes} classes (labels: background and the classes) "
                        f"outputs a table [1, 4+{classes}+nm, A] and prototypes [1, nm, H/4, W/4]; the model outputs "
                        f"{[tuple(s) for s in shapes]}; check --labels or --head")

    def labels_given(self, labels: List[str]) -> List[str]:
        """`--labels` names the classes, as Ultralytics' names do; background comes first."""
        return labels if labels[:1] == [BACKGROUND] else [BACKGROUND, *labels]

    def check(self, card, shapes, model_name: str) -> None:
        self._layout(card, shapes, model_name)

    def _rows(self, card, outputs):
        """(boxes cxcywh, class scores, coefficients) per anchor, and the prototypes as (nm, h, w)."""
        table_at, protos_at, layout, coefficients = self._layout(card, [o.shape for o in outputs], "the model")
        width = 4 + len(card.labels) - 1 + coefficients
        table = np.asarray(outputs[table_at], np.float32).reshape(outputs[table_at].shape[-2:])
        if table.shape[0] == width and table.shape[1] != width:
            table = table.T
        protos = np.asarray(outputs[protos_at], np.float32)[0]
        if layout == "nhwc":
            protos = protos.transpose(2, 0, 1)
        return table[:, :4], table[:, 4:width - coefficients], table[:, width - coefficients:], protos

    def decode_above(self, card, outputs: Sequence[np.ndarray], conf: float) -> Decoded:
        """Candidates with their mask coefficients; the masks themselves are made only for
        the instances that survive the NMS (`instance_masks`)."""
        boxes, scores, coefficients, _ = self._rows(card, outputs)
        keep = np.flatnonzero(scores.max(1) >= conf)
        return Decoded(box_scale_of(card, cxcywh_to_corners(boxes[keep])), np.ascontiguousarray(scores[keep]),
                       coefficients=coefficients[keep])

    def decode(self, card, outputs) -> Decoded:
        return self.decode_above(card, outputs, -np.inf)

    def instance_masks(self, card, outputs: Sequence[np.ndarray], kept: Decoded) -> np.ndarray:
        """(N, H, W) bool over the model input: each instance's mask, sigmoid(coefficients
        . prototypes) > 0.5 scaled up bilinearly, cut to the pixels whose centres lie in
        its box (x >= ceil(x1 - 0.5) and x < ceil(x2 - 0.5))."""
        _, _, _, protos = self._rows(card, outputs)
        height, width = card.input_size
        masks = np.zeros((len(kept.boxes), height, width), bool)
        if not len(kept.boxes):
            return masks
        planes, proto_h, proto_w = protos.shape
        logits = (kept.coefficients @ protos.reshape(planes, -1)).reshape(len(kept.boxes), proto_h, proto_w)
        bounds = np.clip(np.ceil(kept.boxes - 0.5), 0, [width, height, width, height]).astype(np.int64)
        for mask, logit, (x1, y1, x2, y2) in zip(masks, logits, bounds):
            if x2 <= x1 or y2 <= y1:
                continue
            full = cv2.resize(logit, (width, height), interpolation=cv2.INTER_LINEAR)
            mask[y1:y2, x1:x2] = full[y1:y2, x1:x2] > 0
        return masks

    def output_names(self, card) -> List[str]:
        return ["output0", "output1"]

    def matches(self, shapes) -> bool:
        if len(shapes) != 2:
            return False
        four = [s for s in shapes if len(s) == 4]
        three = [s for s in shapes if len(s) == 3]
        return len(four) == 1 and len(three) == 1 and four[0][0] == 1 and three[0][0] == 1

    def recognise(self, facts: FileFacts, model_name: str) -> Optional[Dict]:
        if facts.input_size is None or facts.metadata.get("task", "segment") != "segment":
            return None
        found = split_outputs(facts.output_shapes, tuple(facts.input_size), facts.format)
        if found is None:
            return None
        table_at, _, _, coefficients = found
        _, first, second = facts.output_shapes[table_at]
        anchors = grid_cells(facts.input_size, yolo_strides(facts))
        if second == anchors and first > 4 + coefficients:
            classes = first - 4 - coefficients
        elif first == anchors and second > 4 + coefficients:
            classes = second - 4 - coefficients
        else:
            return None
        check_metadata_size(facts, model_name)
        names = labels_for(facts, classes, model_name)
        return {"task": "segment", "labels": [BACKGROUND, *names], "input_size": facts.input_size,
                "layout": facts.layout, "color": "rgb", "mean": (0.0,), "std": (255.0,),
                "head": {"format": self.name, "preprocessing": "letterbox",
                         "boxes": "normalised" if facts.format == "tflite" else "pixels"}}


HEAD = YoloSeg()
