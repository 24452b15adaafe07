"""A detector's answer: boxes (x1, y1, x2, y2) in frame pixels, scores and class indices;
on a tracked stream (edgecnn.runtime.tracking) also each detection's track id, the
track's age and state, and the frame's track events."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, List, Optional

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
    track_ids: Optional[np.ndarray] = None  # per detection, -1: no track; None: not tracked
    track_ages: Optional[np.ndarray] = None  # frames since the track started
    track_states: Optional[List[str]] = None  # tracked | tentative | untracked
    events: list = field(default_factory=list)  # edgecnn.runtime.tracking.TrackEvent of this frame

    @property
    def tracked(self) -> bool:
        return self.track_ids is not None

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[Item]:
        for i, (box, score, class_id) in enumerate(zip(self.boxes, self.scores, self.classes)):
            track = ((int(self.track_ids[i]), int(self.track_ages[i]), self.track_states[i]) if self.tracked
                     else (None, None, None))
            yield Item(self.labels[int(class_id)], int(class_id), float(score), tuple(float(v) for v in box), *track)

    def to_dict(self, **_other_tasks_options) -> dict:
        """The frame's fields of the result record (edgecnn.runtime.schema): per detection
        the box as corners and as centre and size (vision_msgs' BoundingBox2D), and the
        track when the stream is tracked. (Options of other tasks' records, such as a
        segmenter's masks=, do not apply.)"""
        detections = []
        for item in self:
            x1, y1, x2, y2 = item.box
            entry = {"label": item.label, "class_id": item.class_id, "score": round(item.score, 4),
                     "box": [round(v, 1) for v in item.box],
                     "center": [round((x1 + x2) / 2, 1), round((y1 + y2) / 2, 1)],
                     "size": [round(x2 - x1, 1), round(y2 - y1, 1)]}
            if item.track_id is not None:
                entry.update(track_id=item.track_id, age=item.age, state=item.state)
            detections.append(entry)
        return {**self.timing_dict(), "task": "detect", "detections": detections}

    def draw(self, canvas: np.ndarray) -> None:
        import cv2

        from edgecnn.runtime.annotate import colour_of, draw_label

        for item in self:
            tracked = item.track_id is not None and item.track_id >= 0
            colour = colour_of(item.track_id if tracked else item.class_id)
            x1, y1, x2, y2 = (int(round(v)) for v in item.box)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2 if item.state != "tentative" else 1)
            track = f"#{item.track_id} " if tracked else ""
            draw_label(canvas, f"{track}{item.label} {item.score:.2f}", (x1, y1), colour)
