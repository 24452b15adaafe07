"""A classifier's answer: one probability per label."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Tuple

import numpy as np

from edgecnn.runtime.results import Item, Timing

TOP_K = 5  # classes a result lists (JSON, iteration, web view)


@dataclass
class Classes(Timing):
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

    def top(self, k: int = TOP_K) -> List[Tuple[str, float]]:
        order = np.argsort(-self.scores)[:k]
        return [(self.labels[i], float(self.scores[i])) for i in order]

    def __iter__(self) -> Iterator[Item]:
        """The top classes, best first."""
        for i in np.argsort(-self.scores)[:TOP_K]:
            yield Item(self.labels[i], int(i), float(self.scores[i]))

    def __len__(self) -> int:
        return min(TOP_K, len(self.scores))

    def to_dict(self, k: int = TOP_K, **_other_tasks_options) -> dict:
        """The JSON record (options of other tasks' records, such as a segmenter's masks=, do not apply)."""
        order = np.argsort(-self.scores)[:k]
        return {**self.timing_dict(), "task": "classify", "label": self.label, "score": round(self.score, 4),
                "classes": [{"label": self.labels[i], "class_id": int(i), "score": round(float(self.scores[i]), 4)}
                            for i in order]}

    def draw(self, canvas: np.ndarray) -> None:
        from edgecnn.runtime.annotate import colour_of, draw_label

        draw_label(canvas, f"{self.label} {self.score:.2f}", (4, 4), colour_of(self.class_id))


def scores_from_logits(values: np.ndarray) -> np.ndarray:
    """Class probabilities from a classifier output: used as-is when it already is a
    distribution (a softmax in the graph), softmax otherwise."""
    values = np.asarray(values, np.float32).reshape(-1)
    if values.min() >= 0 and abs(float(values.sum()) - 1.0) < 1e-3:
        return values
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()
