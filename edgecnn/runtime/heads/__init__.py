"""The head seam: a detector output format is one module here exposing `HEAD`, a `Head`.

A head checks a model's outputs once (a clear error naming what it expected), says
which preprocessing it expects ('resize' or 'letterbox'), and decodes ONE image's
outputs into one typed result, `Decoded`: corner boxes in model-input pixels and
per-class scores, and the instance masks or keypoints of heads that have them.
`decode` applies the shared threshold and NMS, so evaluation, parity, the runtime and
the benchmarks all decode through the same call; the task maps the result onto the
frame (boxes for a detector, a label map for a segmenter).

A card names its head in `card.head["format"]`, with the head's own settings beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.registry import Registry
from edgecnn.runtime.nms import MAX_DETECTIONS, NMS_IOU, select

_HEADS = Registry("edgecnn.runtime.heads", "HEAD", "detector head")


@dataclass
class Decoded:
    """ONE image's decoded outputs in model-input pixels: corner boxes (N, 4) and
    per-class scores (N, C); from heads that have them, per-instance masks (N, H, W)
    bool over the model input and keypoints (N, K, 3: x, y, visibility). Before the NMS
    a mask head keeps its per-row `coefficients`, from which masks are made for the
    rows that survive. It unpacks as (boxes, scores)."""

    boxes: np.ndarray
    scores: np.ndarray
    masks: Optional[np.ndarray] = None
    keypoints: Optional[np.ndarray] = None
    coefficients: Optional[np.ndarray] = None

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.boxes, self.scores))

    def __getitem__(self, index: int) -> np.ndarray:
        return (self.boxes, self.scores)[index]

    def __len__(self) -> int:
        return len(self.boxes)

    def take(self, rows: np.ndarray) -> "Decoded":
        """The rows given, in their order, with every per-row field."""
        def pick(values):
            return None if values is None else values[rows]

        return Decoded(self.boxes[rows].reshape(-1, 4), self.scores[rows], pick(self.masks), pick(self.keypoints),
                       pick(self.coefficients))


class Head:
    name = ""
    preprocessing = "resize"  # or "letterbox"
    nms = True  # False: the outputs are final detections (end-to-end heads, SSD post-processing ops)
    has_masks = False  # it makes instance masks (`instance_masks`)
    has_keypoints = False  # its Decoded carries keypoints
    default_conf = 0.25  # the threshold its outputs are read at when none is given

    def config(self, arguments: str) -> Dict:
        """The card's head entry from `--head NAME[:ARGUMENTS]`."""
        if arguments:
            raise ValueError(f"head {self.name} takes no arguments")
        return {"format": self.name}

    def check(self, card, shapes: Sequence[Tuple[int, ...]], model_name: str) -> None:
        """Raise UserError unless the outputs fit this head and the card's labels."""
        raise NotImplementedError

    def decode(self, card, outputs: Sequence[np.ndarray]) -> Decoded:
        """Outputs of ONE image (batch dimension kept or not) -> Decoded: (N, 4) corners in
        input pixels, (N, classes) scores (and what else the head has)."""
        raise NotImplementedError

    def instance_masks(self, card, outputs: Sequence[np.ndarray], kept: Decoded) -> np.ndarray:
        """Heads with masks: (N, H, W) bool over the model input for the rows kept."""
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

    def decode_above(self, card, outputs: Sequence[np.ndarray], conf: float) -> Decoded:
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


def decode(card, outputs: Sequence[np.ndarray], conf: Optional[float] = None, iou: Optional[float] = None,
           max_detections: Optional[int] = None) -> Decoded:
    """Outputs of ONE image -> the instances that survive the threshold and class-aware
    NMS (none for heads whose outputs are final), best first, in model-input pixels;
    masks made for them by heads that have masks."""
    head = head_of(card)
    conf = head.default_conf if conf is None else conf
    candidates = head.decode_above(card, outputs, conf)
    kept = candidates.take(select(candidates.scores, candidates.boxes, conf,
                                  (NMS_IOU if iou is None else iou) if head.nms else None,
                                  MAX_DETECTIONS if max_detections is None else max_detections))
    if head.has_masks:
        kept.masks = head.instance_masks(card, outputs, kept)
    return kept


DEFAULT_HEAD = "ltrb-sigmoid"  # cards written before heads were named carry no format
