"""YOLOv5 detect output as the classic YOLOv5 repository exports it ("yolo-v5"): one
tensor [1, N, 5+nc] with 3 anchors per cell of the stride 8, 16, 32 grids. Per row: cx,
cy, w, h, objectness, then nc class probabilities; a class's score is objectness x its
probability. Boxes are in input pixels (ONNX) or normalised (TFLite). Inputs are
letterboxed (pad 114), RGB, pixel / 255.

Card entry: {"format": "yolo-v5", "boxes": "pixels" | "normalised"}.
Recognised by N being three times the input size's cell count (YOLOv8's head has one
anchor point a cell).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.heads import Decoded, Head
from edgecnn.runtime.heads._shared import YOLO_V5_ANCHORS_PER_CELL, cxcywh_to_corners
from edgecnn.runtime.recognition import (FileFacts, box_scale_of, check_metadata_size, grid_cells, labels_for,
                                         letterbox_card_fields, parse_box_scale, yolo_strides)

ANCHORS_PER_CELL = YOLO_V5_ANCHORS_PER_CELL


class YoloV5(Head):
    name = "yolo-v5"
    preprocessing = "letterbox"

    def config(self, arguments: str) -> Dict:
        return {"format": self.name, **parse_box_scale(arguments)}

    def check(self, card, shapes, model_name: str) -> None:
        width = 5 + len(card.labels)
        if len(shapes) != 1 or len(shapes[0]) < 2 or shapes[0][-1] != width:
            raise UserError(f"{model_name}: a yolo-v5 head with {len(card.labels)} labels outputs one tensor "
                            f"[1, N, {width}]; the model outputs {[tuple(s) for s in shapes]}; check --labels or --head")

    def decode_above(self, card, outputs: Sequence[np.ndarray], conf: float):
        table = np.asarray(outputs[0], np.float32).reshape(-1, 5 + len(card.labels))
        table = table[table[:, 4] >= conf]  # a score is at most its objectness
        scores = table[:, 5:] * table[:, 4:5]
        return Decoded(box_scale_of(card, cxcywh_to_corners(table[:, :4])), scores)

    def decode(self, card, outputs):
        return self.decode_above(card, outputs, -np.inf)

    def output_names(self, card) -> List[str]:
        return ["output0"]

    def recognise(self, facts: FileFacts, model_name: str) -> Optional[Dict]:
        if len(facts.output_shapes) != 1 or len(facts.output_shapes[0]) != 3 or facts.input_size is None:
            return None
        if facts.metadata.get("exporter") == "ultralytics":  # Ultralytics' own YOLOv5u has the v8 head
            return None
        _, rows, width = facts.output_shapes[0]
        if rows != ANCHORS_PER_CELL * grid_cells(facts.input_size, yolo_strides(facts)) or width <= 5:
            return None
        check_metadata_size(facts, model_name)
        return letterbox_card_fields(facts, self.name, labels_for(facts, width - 5, model_name))


HEAD = YoloV5()
