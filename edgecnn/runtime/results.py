"""What every runtime result carries besides its task's answer: where the frame came
from and how fresh the answer is. frame_index (position in the source), capture_time
(wall clock, seconds since the epoch, when the frame was captured), frame_age_ms
(capture -> result ready: what a controller acting on the result is late by) and
inference_ms (the backend call alone). The task result types (edgecnn/tasks/*/result.py)
build on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple


class Timing:
    """Mixin of the result dataclasses, which declare the four fields after their own
    (so that `Classes(scores, labels)` keeps its positional form):
        frame_index: int = 0; capture_time: float = 0.0; frame_age_ms: float = 0.0; inference_ms: float = 0.0
    """

    frame_index: int
    capture_time: float
    frame_age_ms: float
    inference_ms: float
    camera: Optional[str] = None  # the camera's name in a run of several (edgecnn.runtime.plan)
    # Set on a stream with zones or lines (edgecnn.runtime.analytics.stage), else None:
    # the frame's zone and line events and the counts, and the places drawn.
    analytics = None
    places = None

    def timing_dict(self) -> dict:
        timing = {"frame": self.frame_index, "capture_time": round(self.capture_time, 4),
                  "frame_age_ms": round(self.frame_age_ms, 2), "inference_ms": round(self.inference_ms, 2)}
        if self.camera is not None:
            timing["camera"] = self.camera
        return timing


@dataclass(frozen=True)
class Item:
    """One object of a result, as `for d in result` yields it: a detected object (box in
    frame pixels, x1 y1 x2 y2) or one of a classifier's top classes (box None: the
    whole frame). On a tracked stream a detection also has its track: id (-1: none),
    age in frames and state (edgecnn.runtime.trackers.STATES)."""

    label: str
    class_id: int
    score: float
    box: Optional[Tuple[float, float, float, float]] = None
    track_id: Optional[int] = None
    age: Optional[int] = None
    state: Optional[str] = None

    def describe(self) -> str:
        where = f" [{', '.join(f'{v:.1f}' for v in self.box)}]" if self.box is not None else ""
        track = f"#{self.track_id} " if self.track_id is not None and self.track_id >= 0 else ""
        return f"{track}{self.label} {self.score:.2f}{where}"


def describe_items(result) -> List[str]:
    """One line per object: what the web view lists."""
    return [item.describe() for item in result]
