"""A segmenter's answer: a class per pixel.

The model's class map lives at its own resolution (the input, with any letterbox
padding cropped off); `class_map` is it resized (nearest) to the frame. The JSON form
stays small: per-class areas and fractions, plus, when asked, the map run-length
encoded or its outline polygons, both at the model's resolution (all the detail the
model has; a reader scales by `frame_size / rle.size`, contours are already in frame
pixels).

    result.class_map            # (H, W) uint8 label indices at the frame's size
    result.fractions            # share of the frame per label
    for item in result: ...     # each label present: its share as score, its bounding box
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

from edgecnn.runtime.results import Item, Timing

MASK_FORMATS = ("rle", "contours", "none")  # what `--masks` adds to each JSON record
OVERLAY_ALPHA = 0.5  # weight of the class colour over the frame
CONTOUR_TOLERANCE = 1.0  # polygon simplification, model pixels (Douglas-Peucker epsilon)


def run_lengths(values: np.ndarray) -> List[int]:
    """Row-major runs of a label map as [label, length, label, length, ...]."""
    flat = values.ravel()
    if flat.size == 0:
        return []
    starts = np.flatnonzero(np.concatenate(([True], flat[1:] != flat[:-1])))
    lengths = np.diff(np.append(starts, flat.size))
    return np.stack([flat[starts].astype(np.int64), lengths], 1).ravel().tolist()


def decode_run_lengths(runs: List[int], size: Tuple[int, int]) -> np.ndarray:
    """The inverse of run_lengths, for readers of the JSON form."""
    pairs = np.asarray(runs, np.int64).reshape(-1, 2)
    return np.repeat(pairs[:, 0], pairs[:, 1]).astype(np.uint8).reshape(size)


def is_probability(scores: np.ndarray) -> bool:
    """Whether scores read as probabilities (all within 0..1) rather than logits."""
    return float(scores.min()) >= -1e-3 and float(scores.max()) <= 1 + 1e-3


def label_confidence(scores: np.ndarray, class_map: np.ndarray, labels: int) -> np.ndarray:
    """Mean probability of each pixel's chosen label, per label (NaN where absent)."""
    scores = scores.astype(np.float32)
    probability = is_probability(scores)
    if scores.shape[-1] == 1:
        p = scores[..., 0] if probability else 1 / (1 + np.exp(-scores[..., 0]))
        top = np.where(class_map > 0, p, 1 - p)
    elif probability:
        top = scores.max(-1)
    else:  # softmax probability of the argmax: 1 / sum(exp(s - max))
        top = 1 / np.exp(scores - scores.max(-1, keepdims=True)).sum(-1)
    counts = np.bincount(class_map.ravel(), minlength=labels)[:labels]
    sums = np.bincount(class_map.ravel(), weights=top.ravel(), minlength=labels)[:labels]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def label_colours(count: int) -> List[Tuple[int, int, int]]:
    """BGR colour per label: black for the first (background), then the runtime's class
    colours in order (so a segmenter's circle has the detector's circle colour)."""
    from edgecnn.runtime.annotate import colour_of

    return [(0, 0, 0)] + [colour_of(index) for index in range(count - 1)]


@dataclass
class Masks(Timing):
    model_map: np.ndarray  # (h, w) uint8 label indices at the model's resolution, padding removed
    frame_size: Tuple[int, int]  # (height, width) of the frame
    labels: List[str]
    scores: Optional[np.ndarray] = field(default=None, repr=False, compare=False)  # (h, w, C) behind model_map
    frame_index: int = 0
    capture_time: float = 0.0
    frame_age_ms: float = 0.0
    inference_ms: float = 0.0
    _frame_map: Optional[np.ndarray] = field(default=None, repr=False, compare=False)
    _confidence: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    @property
    def class_map(self) -> np.ndarray:
        """(H, W) uint8 label indices at the frame's size (computed once, on first use)."""
        if self._frame_map is None:
            height, width = self.frame_size
            self._frame_map = (self.model_map if self.model_map.shape == (height, width) else
                               cv2.resize(self.model_map, (width, height), interpolation=cv2.INTER_NEAREST_EXACT))
        return self._frame_map

    @property
    def confidence(self) -> Optional[np.ndarray]:
        """Per label, the mean probability of the chosen label over that label's pixels
        (NaN where absent); computed from the scores on first use (softmax or sigmoid
        where they are logits). None without scores."""
        if self.scores is None:
            return None
        if self._confidence is None:
            self._confidence = label_confidence(self.scores, self.model_map, len(self.labels))
        return self._confidence

    @property
    def areas(self) -> np.ndarray:
        """Pixels of the frame per label."""
        return np.bincount(self.class_map.ravel(), minlength=len(self.labels))[:len(self.labels)]

    @property
    def fractions(self) -> np.ndarray:
        return self.areas / max(1, self.class_map.size)

    def mask(self, label) -> np.ndarray:
        """Boolean (H, W) mask of one label (a name or an index) at the frame's size."""
        index = self.labels.index(label) if isinstance(label, str) else int(label)
        return self.class_map == index

    def __len__(self) -> int:
        return int(np.count_nonzero(self.areas))

    def __iter__(self) -> Iterator[Item]:
        """Each label present, largest first: its share of the frame as score, its bounding box."""
        areas = self.areas
        for index in np.argsort(-areas):
            if areas[index] == 0:
                break
            x, y, w, h = cv2.boundingRect((self.class_map == index).astype(np.uint8))
            yield Item(self.labels[index], int(index), float(areas[index] / self.class_map.size),
                       (float(x), float(y), float(x + w), float(y + h)))

    def to_dict(self, masks: str = "rle", **_other_tasks_options) -> dict:
        """The JSON record: per-label areas (frame pixels), fractions and confidence, plus
        the map as runs (masks="rle") or outline polygons (masks="contours")."""
        if masks not in MASK_FORMATS:
            raise ValueError(f"masks must be one of {', '.join(MASK_FORMATS)}, got {masks!r}")
        height, width = self.frame_size
        areas, confidence = self.areas, self.confidence
        found = []
        for index in np.flatnonzero(areas):
            entry = {"label": self.labels[index], "class_id": int(index), "area": int(areas[index]),
                     "fraction": round(float(areas[index]) / (height * width), 5)}
            if confidence is not None and np.isfinite(confidence[index]):
                entry["confidence"] = round(float(confidence[index]), 4)
            found.append(entry)
        record = {**self.timing_dict(), "task": "segment", "size": [height, width], "areas": found}
        if masks == "rle":
            record["rle"] = {"size": list(self.model_map.shape), "runs": run_lengths(self.model_map)}
        elif masks == "contours":
            record["contours"] = self.contours()
        return record

    def contours(self) -> List[dict]:
        """Outer and hole outlines per label (not the first, background), in frame pixels."""
        scale_x = self.frame_size[1] / self.model_map.shape[1]
        scale_y = self.frame_size[0] / self.model_map.shape[0]
        found = []
        for index in np.unique(self.model_map):
            if index == 0 or index >= len(self.labels):
                continue
            outlines, _ = cv2.findContours((self.model_map == index).astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_SIMPLE)
            polygons = []
            for outline in outlines:
                points = cv2.approxPolyDP(outline, CONTOUR_TOLERANCE, True).reshape(-1, 2).astype(np.float64)
                points = (points + 0.5) * (scale_x, scale_y)
                polygons.append([round(float(v), 1) for v in points.ravel()])
            found.append({"label": self.labels[index], "class_id": int(index), "polygons": polygons})
        return found

    def draw(self, canvas: np.ndarray) -> None:
        """Tint each label's pixels with its colour (the first label, background, is left
        as it is)."""
        from edgecnn.runtime.annotate import colour_of, draw_label

        class_map = self.class_map
        if canvas.shape[:2] != class_map.shape:
            class_map = cv2.resize(class_map, (canvas.shape[1], canvas.shape[0]),
                                   interpolation=cv2.INTER_NEAREST_EXACT)
        table = np.zeros((256, 1, 3), np.uint8)
        table[:min(len(self.labels), 256), 0] = label_colours(len(self.labels))[:256]
        x, y, w, h = cv2.boundingRect(class_map)  # the labelled part: the only pixels that change
        if w and h:
            labels, region = class_map[y:y + h, x:x + w], canvas[y:y + h, x:x + w]
            tinted = cv2.addWeighted(region, 1 - OVERLAY_ALPHA, cv2.applyColorMap(labels, table), OVERLAY_ALPHA, 0)
            cv2.copyTo(tinted, labels, region)  # only where the label is not 0 (region is a view of canvas)
        shares = np.bincount(self.model_map.ravel(), minlength=len(self.labels)) / max(1, self.model_map.size)
        y = 4
        for index in np.argsort(-shares):
            if 0 < index < len(self.labels) and shares[index] > 0:
                draw_label(canvas, f"{self.labels[index]} {100 * shares[index]:.0f}%", (4, y), colour_of(index - 1))
                y += 20
