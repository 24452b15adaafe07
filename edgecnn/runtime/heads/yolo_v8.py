"""Ultralytics YOLOv8 / YOLO11 / YOLO12 detect output ("yolo-v8"): one tensor
[1, 4+nc, A], or transposed [1, A, 4+nc], over A anchor points (every cell of the
stride 8, 16 and 32 grids). Per anchor: cx, cy, w, h, then nc class scores already
sigmoided, with no objectness. Boxes are in input pixels in ONNX files and normalised
to 0..1 in TFLite files. Inputs are letterboxed (pad 114), RGB, pixel / 255.

Card entry: {"format": "yolo-v8", "boxes": "pixels" | "normalised"}.
Recognised by A matching the input size's anchor count (which sets it apart from
YOLOv5's 3 anchors a cell) and by Ultralytics' metadata where present.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.heads import Decoded, Head
from edgecnn.runtime.heads._shared import cxcywh_to_corners
from edgecnn.runtime.recognition import (FileFacts, box_scale_of, check_metadata_size, grid_cells, labels_for,
                                         letterbox_card_fields, parse_box_scale, yolo_strides)


def rows_of(output: np.ndarray, width: int) -> Tuple[np.ndarray, bool]:
    """A [1, width, A] or [1, A, width] output as a 2-D array and whether it is channels-first."""
    table = np.asarray(output, np.float32).reshape(output.shape[-2:])
    return table, table.shape[0] == width and table.shape[1] != width


class YoloV8(Head):
    name = "yolo-v8"
    preprocessing = "letterbox"

    def config(self, arguments: str) -> Dict:
        return {"format": self.name, **parse_box_scale(arguments)}

    def check(self, card, shapes, model_name: str) -> None:
        width = 4 + len(card.labels)
        if len(shapes) != 1 or len(shapes[0]) < 2 or width not in tuple(shapes[0][-2:]):
            raise UserError(f"{model_name}: a yolo-v8 head with {len(card.labels)} labels outputs one tensor "
                            f"[1, {width}, A] (or [1, A, {width}]); the model outputs {[tuple(s) for s in shapes]}; "
                            f"check --labels or --head")

    def decode_above(self, card, outputs: Sequence[np.ndarray], conf: float):
        width = 4 + len(card.labels)
        table, channels_first = rows_of(outputs[0], width)
        if channels_first:  # [4+nc, A]: reduce over rows, gather only the columns above conf
            best = table[4:].max(0)
            keep = np.flatnonzero(best >= conf)
            boxes, scores = table[:4, keep].T, table[4:, keep].T
        else:
            best = table[:, 4:].max(1)
            keep = np.flatnonzero(best >= conf)
            boxes, scores = table[keep, :4], table[keep, 4:]
        corners = cxcywh_to_corners(boxes)
        return Decoded(box_scale_of(card, corners), np.ascontiguousarray(scores))

    def decode(self, card, outputs):
        return self.decode_above(card, outputs, -np.inf)

    def output_names(self, card) -> List[str]:
        return ["output0"]

    def matches(self, shapes) -> bool:
        return len(shapes) == 1 and len(shapes[0]) == 3 and max(shapes[0][1:]) > 4 + 1 and min(shapes[0][1:]) > 4

    def recognise(self, facts: FileFacts, model_name: str) -> Optional[Dict]:
        if len(facts.output_shapes) != 1 or len(facts.output_shapes[0]) != 3 or facts.input_size is None:
            return None
        if facts.metadata.get("task", "detect") != "detect" or facts.metadata.get("exporter") == "yolov5":
            return None
        _, first, second = facts.output_shapes[0]
        anchors = grid_cells(facts.input_size, yolo_strides(facts))
        if second == anchors and first > 4:
            classes = first - 4
        elif first == anchors and second > 4:
            classes = second - 4
        else:
            return None
        if facts.metadata.get("end2end"):
            raise UserError(f"{model_name}: its metadata says end2end but its output {facts.output_shapes[0]} is a "
                            f"raw head over {anchors} anchors")
        check_metadata_size(facts, model_name)
        return letterbox_card_fields(facts, self.name, labels_for(facts, classes, model_name))


HEAD = YoloV8()
