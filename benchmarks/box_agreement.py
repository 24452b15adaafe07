"""One box matching for the agreement benchmarks: edgecnn's detections of a file against
another runtime's detections of the same file (Ultralytics' predict, TensorFlow's
interpreter). Greedily, best IoU first, each of edgecnn's boxes takes an unused box of
the same class; the criteria: every box matched, at IoU >= 0.99, with a score within
0.01. `agreeing` counts the boxes whose partner meets both."""
from __future__ import annotations

import numpy as np

from edgecnn.tasks.detect.task import box_iou

MIN_IOU, MAX_SCORE_DIFFERENCE = 0.99, 0.01


class BoxAgreement:
    def __init__(self) -> None:
        self.images = self.boxes = self.unmatched = self.below = self.agreeing = 0
        self.worst_score, self.min_iou = 0.0, 1.0

    def add(self, mine, theirs_boxes: np.ndarray, theirs_scores: np.ndarray, theirs_classes: np.ndarray) -> None:
        """One image: `mine` a Detections, theirs as arrays (corners in the same pixels)."""
        self.images += 1
        self.boxes += max(len(theirs_boxes), len(mine.boxes))
        used = set()
        for box, score, cls in zip(mine.boxes, mine.scores, mine.classes):
            ious = box_iou(box, theirs_boxes) if len(theirs_boxes) else np.zeros(0)
            ious[np.all(np.abs(theirs_boxes - box) <= 1e-3, 1)] = 1.0  # the same box, even one of zero area
            options = [j for j in np.argsort(-ious) if j not in used and theirs_classes[j] == cls]
            if not options:
                self.unmatched += 1
                continue
            j = options[0]
            used.add(j)
            score_difference = abs(float(theirs_scores[j]) - float(score))
            self.min_iou = min(self.min_iou, float(ious[j]))
            self.worst_score = max(self.worst_score, score_difference)
            self.below += ious[j] < MIN_IOU
            self.agreeing += bool(ious[j] >= MIN_IOU and score_difference <= MAX_SCORE_DIFFERENCE)
        self.unmatched += len(theirs_boxes) - len(used)

    def result(self) -> dict:
        return {"images": self.images, "boxes": self.boxes, "unmatched": self.unmatched, "agreeing": self.agreeing,
                "below_iou_0.99": int(self.below), "min_iou": round(self.min_iou, 5),
                "max_score_difference": round(self.worst_score, 5),
                "agree": bool(self.unmatched == 0 and self.below == 0 and self.worst_score <= MAX_SCORE_DIFFERENCE)}
