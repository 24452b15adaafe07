"""SSD with TFLite's TFLite_Detection_PostProcess op ("tflite-ssd"): the TensorFlow
Object Detection API and Coral example files. Four float outputs:
- boxes [1, N, 4]: ymin, xmin, ymax, xmax, normalised;
- classes [1, N]: 0-based class indices, as floats;
- scores [1, N], sorted from the highest;
- count [1]: how many of the N rows are detections.

TF1 exports give them in that order, TF2 exports in another, so they are told apart by
shape (boxes, count) and by value (class indices are whole numbers, scores lie in 0..1
and come sorted). The op has already applied NMS. Inputs are a plain resize, RGB;
float inputs take (pixel - 127.5) / 127.5, uint8 inputs take the raw pixels.

Card entry: {"format": "tflite-ssd"}.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.heads import Decoded, Head
from edgecnn.runtime.heads._shared import one_hot_scores
from edgecnn.runtime.recognition import FileFacts, labels_for, pixel_card_fields

SSD_MEAN = SSD_STD = 127.5  # the Object Detection API's input range, -1..1


def roles(shapes: Sequence[Tuple[int, ...]]) -> Optional[Tuple[int, int, Tuple[int, int]]]:
    """(boxes index, count index, the two [1, N] indices) when the shapes are the op's
    four outputs, else None."""
    if len(shapes) != 4:
        return None
    boxes = [i for i, s in enumerate(shapes) if len(s) == 3 and s[0] == 1 and s[2] == 4]
    count = [i for i, s in enumerate(shapes) if tuple(s) == (1,)]
    rows = [i for i, s in enumerate(shapes) if len(s) == 2 and s[0] == 1]
    if len(boxes) != 1 or len(count) != 1 or len(rows) != 2:
        return None
    n = shapes[boxes[0]][1]
    if any(shapes[i][1] != n for i in rows):
        return None
    return boxes[0], count[0], (rows[0], rows[1])


def _whole(values: np.ndarray) -> bool:
    return bool(np.all(values == np.rint(values)))


def _sorted_down(values: np.ndarray) -> bool:
    return bool(np.all(np.diff(values) <= 0))


def classes_and_scores(first: np.ndarray, second: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Which of the two [N] outputs (valid rows only) holds the classes: the whole-number
    one where only one is; else the one with a value above 1; else the one not sorted
    from the highest; else the earlier one, as TF1 exports order them."""
    for test in (lambda v: _whole(v), lambda v: bool(np.any(v > 1)), lambda v: not _sorted_down(v)):
        a, b = test(first), test(second)
        if a != b:
            return (first, second) if a else (second, first)
    return first, second


class TfliteSsd(Head):
    name = "tflite-ssd"
    preprocessing = "resize"
    nms = False

    def check(self, card, shapes, model_name: str) -> None:
        if roles(shapes) is None:
            raise UserError(f"{model_name}: a tflite-ssd head outputs boxes [1, N, 4], classes [1, N], scores [1, N] "
                            f"and count [1]; the model outputs {[tuple(s) for s in shapes]}; check --head")

    def decode_above(self, card, outputs: Sequence[np.ndarray], conf: float):
        if any(np.ndim(o) == 0 for o in outputs):  # one image's rows (eval): count [1] lost its batch dimension
            outputs = [np.asarray(o)[None] for o in outputs]
        shapes = [tuple(np.shape(o)) for o in outputs]
        boxes_at, count_at, (first_at, second_at) = roles(shapes)
        count = int(np.clip(np.asarray(outputs[count_at]).reshape(-1)[0], 0, shapes[boxes_at][1]))
        classes, scores = classes_and_scores(np.asarray(outputs[first_at], np.float32)[0, :count],
                                             np.asarray(outputs[second_at], np.float32)[0, :count])
        boxes = np.asarray(outputs[boxes_at], np.float32)[0, :count]
        keep = scores >= conf
        height, width = card.input_size
        corners = boxes[keep][:, [1, 0, 3, 2]] * np.array([width, height, width, height], np.float32)
        return Decoded(corners, one_hot_scores(scores[keep], np.rint(classes[keep]).astype(np.int64), len(card.labels)))

    def decode(self, card, outputs):
        return self.decode_above(card, outputs, -np.inf)

    def output_names(self, card) -> List[str]:
        return ["boxes", "classes", "scores", "count"]

    def matches(self, shapes) -> bool:
        return roles(shapes) is not None

    def recognise(self, facts: FileFacts, model_name: str) -> Optional[Dict]:
        if roles(facts.output_shapes) is None or facts.input_size is None:
            return None
        fields = {"task": "detect", "labels": labels_for(facts, None, model_name), "input_size": facts.input_size,
                  "layout": facts.layout, "color": "rgb", "mean": (SSD_MEAN,), "std": (SSD_STD,),
                  "head": {"format": self.name}}
        fields.update(pixel_card_fields(facts))
        return fields


HEAD = TfliteSsd()
