"""A detector's answer: boxes (x1, y1, x2, y2) in frame pixels, scores and class indices."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List

import numpy as np

from edgecnn.runtime.results import Item, Timing


@dataclass
class Detections(Timing):
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    labels: List[str]
    frame_index: int = 0
    capture_time: float = 0.0
    frame_age_ms: float = 0.0
    inference_ms: float = 0.0

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[Item]:
        for box, score, class_id in zip(self.boxes, self.scores, self.classes):
            yield Item(self.labels[int(class_id)], int(class_id), float(score), tuple(float(v) for v in box))

    def to_dict(self) -> dict:
        return {**self.timing_dict(), "task": "detect", "detections": [
            {"label": self.labels[c], "class_id": int(c), "score": round(float(s), 4),
             "box": [round(float(v), 1) for v in b]}
            for b, s, c in zip(self.boxes, self.scores, self.classes)]}

    def draw(self, canvas: np.ndarray) -> None:
        import cv2

        from edgecnn.runtime.annotate import colour_of, draw_label

        for item in self:
            colour = colour_of(item.class_id)
            x1, y1, x2, y2 = (int(round(v)) for v in item.box)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
            draw_label(canvas, f"{item.label} {item.score:.2f}", (x1, y1), colour)
