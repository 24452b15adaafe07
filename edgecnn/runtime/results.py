"""What the runtime returns per frame: small typed objects a robot program can act on
and a sink can serialise.

Both kinds carry where the frame came from and how fresh the answer is:
frame_index (position in the source), capture_time (wall clock, seconds since the
epoch, when the frame was captured), frame_age_ms (capture -> result ready: what a
controller acting on the result is late by) and inference_ms (the backend call alone).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from edgecnn.runtime import detection


def _timing(result) -> dict:
    return {"frame": result.frame_index, "capture_time": round(result.capture_time, 4),
            "frame_age_ms": round(result.frame_age_ms, 2), "inference_ms": round(result.inference_ms, 2)}


@dataclass
class Classes:
    """A classifier's answer: one probability per label."""

    scores: np.ndarray
    labels: List[str]
    frame_index: int = 0
    capture_time: float = 0.0
    frame_age_ms: float = 0.0
    inference_ms: float = 0.0

    @property
    def class_id(self) -> int:
        return int(np.argmax(self.scores))

    @property
    def label(self) -> str:
        return self.labels[self.class_id]

    @property
    def score(self) -> float:
        return float(self.scores[self.class_id])

    def top(self, k: int = 5) -> List[Tuple[str, float]]:
        order = np.argsort(-self.scores)[:k]
        return [(self.labels[i], float(self.scores[i])) for i in order]

    def to_dict(self, k: int = 5) -> dict:
        order = np.argsort(-self.scores)[:k]
        return {**_timing(self), "task": "classify", "label": self.label, "score": round(self.score, 4),
                "classes": [{"label": self.labels[i], "class_id": int(i), "score": round(float(self.scores[i]), 4)}
                            for i in order]}


@dataclass
class Detections(detection.Detections):
    """A detector's answer: boxes (x1, y1, x2, y2) in frame pixels, scores, classes."""

    frame_index: int = 0
    capture_time: float = 0.0
    frame_age_ms: float = 0.0
    inference_ms: float = 0.0

    def to_dict(self) -> dict:
        return {**_timing(self), "task": "detect", **super().to_dict()}


def scores_from_logits(values: np.ndarray) -> np.ndarray:
    """Class probabilities from a classifier output: used as-is when it already is a
    distribution (a softmax in the graph), softmax otherwise."""
    values = np.asarray(values, np.float32).reshape(-1)
    if values.min() >= 0 and abs(float(values.sum()) - 1.0) < 1e-3:
        return values
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()
