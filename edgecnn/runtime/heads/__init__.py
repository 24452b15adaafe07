"""The head seam: a detector output format is one module here exposing `HEAD`, a `Head`.

A head checks a model's outputs once (a clear error naming what it expected), says
which preprocessing it expects ('resize' or 'letterbox'), and decodes ONE image's
outputs into corner boxes in model-input pixels and per-class scores. `detect` then
applies the shared threshold, NMS and mapping back onto the frame, so evaluation,
parity, the runtime and the benchmarks all decode through the same two calls.

A card names its head in `card.head["format"]`, with the head's own settings beside it.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.registry import Registry
from edgecnn.runtime.nms import MAX_DETECTIONS, NMS_IOU, postprocess

_HEADS = Registry("edgecnn.runtime.heads", "HEAD", "detector head")


class Head:
    name = ""
    preprocessing = "resize"  # or "letterbox"
    nms = True  # False: the outputs are final detections (end-to-end heads, SSD post-processing ops)

    def config(self, arguments: str) -> Dict:
        """The card's head entry from `--head NAME[:ARGUMENTS]`."""
        if arguments:
            raise ValueError(f"head {self.name} takes no arguments")
        return {"format": self.name}

    def check(self, card, shapes: Sequence[Tuple[int, ...]], model_name: str) -> None:
        """Raise UserError unless the outputs fit this head and the card's labels."""
        raise NotImplementedError

    def decode(self, card, outputs: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """Outputs of ONE image (batch dimension kept or not) -> ((N, 4) corners in input
        pixels, (N, classes) scores)."""
        raise NotImplementedError

    def output_names(self, card) -> List[str]:
        raise NotImplementedError

    def matches(self, shapes: Sequence[Tuple[int, ...]]) -> bool:
        """Whether output shapes have this head's layout (labels and settings unknown):
        how `edgecnn info` recognises the head of a file without a card."""
        return False

    def recognise(self, facts, model_name: str) -> Optional[Dict]:
        """For a file without a card (facts: edgecnn.runtime.recognition.FileFacts): the card
        fields (task, labels, input_size, layout, color, mean, std, head) this head reads off
        it when the file has its layout, else None; UserError when the file's metadata
        contradicts its shapes. Heads that return None are never chosen without --head."""
        return None

    def labels_given(self, labels: List[str]) -> List[str]:
        """The card's labels from `--labels` (a head whose card adds a label, such as a
        segmenter's background, adds it here)."""
        return labels

    def decode_above(self, card, outputs: Sequence[np.ndarray], conf: float) -> Tuple[np.ndarray, np.ndarray]:
        """`decode`, free to leave out cells whose best score is below `conf` (the shared
        threshold drops them anyway): large outputs are then decoded in well under 1 ms."""
        return self.decode(card, outputs)


def head_names() -> List[str]:
    return _HEADS.names()


def get_head(name: str) -> Head:
    return _HEADS.get(name)


def head_of(card) -> Head:
    return get_head(card.head.get("format", DEFAULT_HEAD))


def all_heads() -> List[Head]:
    return _HEADS.all()


def recognise(shapes: Sequence[Tuple[int, ...]]) -> List[str]:
    """Names of the heads whose layout the output shapes fit."""
    return [head.name for head in _HEADS.all() if head.matches(shapes)]


def parse_head_flag(text: str) -> Dict:
    """`--head NAME[:ARGUMENTS]` -> the card's head entry (UserError naming the known heads)."""
    from edgecnn.core.errors import UserError

    name, _, arguments = text.partition(":")
    head = get_head(name)
    try:
        return head.config(arguments)
    except ValueError as exc:
        raise UserError(f"--head {text}: {exc}") from None


def detect(card, outputs: Sequence[np.ndarray], image_size: Tuple[int, int], conf: float = 0.25,
           iou: float = None, max_detections: int = None):
    """Outputs of ONE image -> Detections in frame pixels: the head's decode, then the
    shared threshold, NMS and mapping back."""
    head = head_of(card)
    corners, scores = head.decode_above(card, outputs, conf)
    return postprocess(corners, scores, card.labels, card.input_size, image_size, conf,
                       (NMS_IOU if iou is None else iou) if head.nms else None,
                       MAX_DETECTIONS if max_detections is None else max_detections, head.preprocessing)


DEFAULT_HEAD = "ltrb-sigmoid"  # cards written before heads were named carry no format
