"""SSD as jetson-inference's pytorch-ssd exports it to ONNX ("ssd-jetson"): two outputs,
scores [1, N, C] (softmaxed, class 0 is the background) then boxes [1, N, 4] (x1, y1,
x2, y2, normalised). The shared NMS applies. Inputs are a plain resize, RGB, with
(pixel - 127) / 128, as its training recipe feeds them.

Card entry: {"format": "ssd-jetson"}; its labels are the C - 1 classes after the
background, or all C (the labels.txt jetson-inference writes, BACKGROUND first: the
background's scores are then zeroed, so it is never detected).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.heads import Decoded, Head
from edgecnn.runtime.recognition import FileFacts, labels_for

JETSON_MEAN, JETSON_STD = 127.0, 128.0


def order(shapes: Sequence[Tuple[int, ...]], names: Sequence[str] = ()) -> Optional[Tuple[int, int]]:
    """(scores index, boxes index): by the output names 'scores'/'boxes' where the file has
    them, else scores first; None unless both are [1, N, C] and [1, N, 4] of the same N."""
    if len(shapes) != 2 or any(len(s) != 3 or s[0] != 1 for s in shapes) or shapes[0][1] != shapes[1][1]:
        return None
    if list(names) == ["boxes", "scores"]:
        at = (1, 0)
    elif list(names) == ["scores", "boxes"] or not names or shapes[1][2] == 4:
        at = (0, 1)
    else:
        return None
    return at if shapes[at[1]][2] == 4 and shapes[at[0]][2] >= 2 else None


class SsdJetson(Head):
    name = "ssd-jetson"
    preprocessing = "resize"

    def check(self, card, shapes, model_name: str) -> None:
        at = order(shapes)
        if at is None or len(card.labels) not in (shapes[at[0]][2] - 1, shapes[at[0]][2]):
            raise UserError(f"{model_name}: an ssd-jetson head with {len(card.labels)} labels outputs scores "
                            f"[1, N, {len(card.labels) + 1}] (background first) and boxes [1, N, 4]; the model "
                            f"outputs {[tuple(s) for s in shapes]}; check --labels or --head")

    def decode(self, card, outputs):
        shapes = [tuple(np.shape(o)) if np.ndim(o) == 3 else (1, *np.shape(o)) for o in outputs]
        scores_at, boxes_at = order(shapes, card.head.get("outputs", ()))
        height, width = card.input_size
        boxes = np.asarray(outputs[boxes_at], np.float32).reshape(-1, 4)
        scores = np.asarray(outputs[scores_at], np.float32).reshape(len(boxes), -1)
        if len(card.labels) == scores.shape[1]:  # labels name the background too
            scores = np.concatenate([np.zeros((len(scores), 1), np.float32), scores[:, 1:]], 1)
        else:
            scores = np.ascontiguousarray(scores[:, 1:])
        return Decoded(boxes * np.array([width, height, width, height], np.float32), scores)

    def output_names(self, card) -> List[str]:
        return ["scores", "boxes"]

    def recognise(self, facts: FileFacts, model_name: str) -> Optional[Dict]:
        at = order(facts.output_shapes, facts.output_names if set(facts.output_names) == {"scores", "boxes"} else ())
        if at is None or facts.input_size is None or facts.format != "onnx":
            return None
        names = facts.metadata.get("names")
        labels = [str(i) for i in range(1, facts.output_shapes[at[0]][2])] if names is None else \
            labels_for(facts, facts.output_shapes[at[0]][2] - 1, model_name)
        head = {"format": self.name}
        if at == (1, 0):
            head["outputs"] = ["boxes", "scores"]
        return {"task": "detect", "labels": labels, "input_size": facts.input_size, "layout": facts.layout,
                "color": "rgb", "mean": (JETSON_MEAN,), "std": (JETSON_STD,), "head": head}


HEAD = SsdJetson()
