"""edgecnn's own detector head ("ltrb-sigmoid"): per stride level, one box tensor of
normalised side distances (left, top, right, bottom as fractions of the input size,
sigmoid inside the graph) and one score tensor of class probabilities, boxes for
every level first, then scores. Keeping boxes and scores in separate tensors lets int8
give each its own scale. Inputs are a plain resize of the frame.

Card entry: {"format": "ltrb-sigmoid", "strides": [8, 16, 32]}.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.heads import Decoded, Head

DEFAULT_STRIDES = (8, 16, 32)


def level_shape(input_size: Tuple[int, int], stride: int) -> Tuple[int, int]:
    """Feature-map size at `stride`: every stride-2 conv (k3, p1) rounds up."""
    height, width = input_size
    for _ in range(int(np.log2(stride))):
        height, width = (height + 1) // 2, (width + 1) // 2
    return height, width


@lru_cache(maxsize=16)
def cell_centres(input_size: Tuple[int, int], strides: Tuple[int, ...]) -> np.ndarray:
    """(cells, 2) centre (x, y) of every output cell in input pixels, level by level,
    row-major within a level: the order of the model's flattened outputs."""
    centres = []
    for stride in strides:
        height, width = level_shape(input_size, stride)
        ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        centres.append(np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], 1))
    return np.concatenate(centres).astype(np.float32)


def decode_levels(boxes: Sequence[np.ndarray], scores: Sequence[np.ndarray], input_size: Tuple[int, int],
                  strides: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Per-level outputs of ONE image -> (cells, 4) corner boxes in input pixels and
    (cells, classes) scores."""
    distances = np.concatenate([np.asarray(b, np.float32).reshape(-1, 4) for b in boxes])
    probabilities = np.concatenate([np.asarray(s, np.float32).reshape(len(np.asarray(b).reshape(-1, 4)), -1)
                                    for b, s in zip(boxes, scores)])
    centres = cell_centres(tuple(input_size), tuple(strides))
    if len(centres) != len(distances):
        raise ValueError(f"model outputs {len(distances)} cells, expected {len(centres)} for input "
                         f"{input_size[0]}x{input_size[1]} at strides {list(strides)}")
    height, width = input_size
    d = distances * np.array([width, height, width, height], np.float32)
    corners = np.concatenate([centres - d[:, :2], centres + d[:, 2:]], 1)
    return corners, probabilities


def strides_of(card) -> List[int]:
    return list(card.head.get("strides", DEFAULT_STRIDES))


class LtrbSigmoid(Head):
    name = "ltrb-sigmoid"
    preprocessing = "resize"

    def config(self, arguments: str) -> Dict:
        try:
            strides = [int(s) for s in arguments.split(",")] if arguments else list(DEFAULT_STRIDES)
        except ValueError:
            raise ValueError(f"strides must be integers, got {arguments!r}") from None
        return {"format": self.name, "strides": strides}

    def check(self, card, shapes, model_name: str) -> None:
        levels, classes = len(strides_of(card)), len(card.labels)
        if (len(shapes) != 2 * levels or any(s[-1] != 4 for s in shapes[:levels])
                or any(s[-1] != classes for s in shapes[levels:])):
            raise UserError(f"{model_name}: a detector with {classes} labels at {levels} levels should output "
                            f"{levels} box tensors (.., 4) then {levels} score tensors (.., {classes}); "
                            f"the model outputs {[tuple(s) for s in shapes]}")
        expected = len(cell_centres(tuple(card.input_size), tuple(strides_of(card))))
        cells = sum(int(np.prod(s)) // 4 for s in shapes[:levels])
        if cells != expected:
            raise UserError(f"{model_name}: model outputs {cells} cells, expected {expected} for input "
                            f"{card.input_size[0]}x{card.input_size[1]} at strides {strides_of(card)}")

    def decode(self, card, outputs):
        levels = len(strides_of(card))
        return Decoded(*decode_levels(outputs[:levels], outputs[levels:], card.input_size, strides_of(card)))

    def matches(self, shapes) -> bool:
        """Box tensors (.., cells, 4) for each level, then score tensors (.., cells, C) of the same cells."""
        levels = len(shapes) // 2
        if not levels or len(shapes) % 2 or any(len(s) < 2 for s in shapes):
            return False
        boxes, scores = shapes[:levels], shapes[levels:]
        return (all(b[-1] == 4 for b in boxes) and len({s[-1] for s in scores}) == 1
                and all(b[-2] == s[-2] for b, s in zip(boxes, scores)))

    def output_names(self, card) -> List[str]:
        strides = strides_of(card)
        return [f"boxes_s{s}" for s in strides] + [f"scores_s{s}" for s in strides]


HEAD = LtrbSigmoid()
