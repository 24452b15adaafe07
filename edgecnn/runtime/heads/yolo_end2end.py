"""End-to-end YOLO output ("yolo-end2end": YOLO26, YOLOv10, and YOLOv8/11 exported
with NMS inside the graph): one tensor [1, K, 6] of final detections, K = 300 by
default. Per row: x1, y1, x2, y2, score, class index. No NMS is applied after it; rows
below the score threshold are dropped. Boxes are in input pixels in ONNX files. TFLite
files differ by exporter: Ultralytics 8.4's own TFLite export (its LiteRT route) keeps
pixels in its end-to-end files while normalising its raw-head ones, so a TFLite
end-to-end file is read as "auto" (normalised when all K rows' coordinates lie within
0..2, else pixels). Inputs are letterboxed (pad 114), RGB, pixel / 255.

Card entry: {"format": "yolo-end2end", "boxes": "pixels" | "normalised" | "auto"}.
Recognised by Ultralytics' end2end metadata, or by a [1, K, 6] output whose K is no
anchor count of the input size (a raw head's would be).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.heads import Decoded, Head
from edgecnn.runtime.heads._shared import YOLO_V5_ANCHORS_PER_CELL as ANCHORS_PER_CELL, one_hot_scores
from edgecnn.runtime.recognition import (FileFacts, box_scale_of, check_metadata_size, grid_cells, labels_for,
                                         letterbox_card_fields, parse_box_scale, yolo_strides)

ROW = 6  # x1, y1, x2, y2, score, class


class YoloEnd2End(Head):
    name = "yolo-end2end"
    preprocessing = "letterbox"
    nms = False

    def config(self, arguments: str) -> Dict:
        return {"format": self.name, **parse_box_scale(arguments)}

    def check(self, card, shapes, model_name: str) -> None:
        if len(shapes) != 1 or len(shapes[0]) < 2 or shapes[0][-1] != ROW:
            raise UserError(f"{model_name}: a yolo-end2end head outputs one tensor [1, K, 6] (x1, y1, x2, y2, score, "
                            f"class); the model outputs {[tuple(s) for s in shapes]}; check --head")

    def decode_above(self, card, outputs: Sequence[np.ndarray], conf: float):
        every = np.asarray(outputs[0], np.float32).reshape(-1, ROW)
        rows = every[every[:, 4] >= conf]
        classes = np.rint(rows[:, 5]).astype(np.int64)
        return Decoded(box_scale_of(card, rows[:, :4].copy(), every[:, :4]),
                       one_hot_scores(rows[:, 4], classes, len(card.labels)))

    def decode(self, card, outputs):
        return self.decode_above(card, outputs, -np.inf)

    def output_names(self, card) -> List[str]:
        return ["output0"]

    def recognise(self, facts: FileFacts, model_name: str) -> Optional[Dict]:
        if len(facts.output_shapes) != 1 or len(facts.output_shapes[0]) != 3 or facts.output_shapes[0][2] != ROW:
            return None
        if facts.metadata.get("task", "detect") != "detect" or facts.input_size is None:
            return None
        rows = facts.output_shapes[0][1]
        anchors = grid_cells(facts.input_size, yolo_strides(facts))
        if rows in (anchors, ANCHORS_PER_CELL * anchors):
            return None  # a raw head with 1 or 2 classes
        if facts.metadata.get("end2end") is False and facts.metadata.get("exporter") == "ultralytics":
            raise UserError(f"{model_name}: its metadata says end2end False but its output {facts.output_shapes[0]} "
                            f"is not a raw head of {anchors} anchors")
        check_metadata_size(facts, model_name)
        fields = letterbox_card_fields(facts, self.name, labels_for(facts, None, model_name))
        if facts.format == "tflite":
            fields["head"]["boxes"] = "auto"
        return fields


HEAD = YoloEnd2End()
