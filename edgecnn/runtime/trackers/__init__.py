"""The tracker seam: multi-object trackers that give each detection a stable track id.
A tracker kind is one module here exposing `TRACKER`, a `TrackerType`; `edgecnn run
--track NAME` and `model.stream(..., track=NAME)` look it up by name. An open tracker
takes one frame's detections and says, per detection, which track it belongs to, how
old that track is and its state, and which tracks ended (edgecnn.runtime.tracking turns
that into the result's fields and new | update | end events).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Tuple

import numpy as np

from edgecnn.core.registry import Registry

_TRACKERS = Registry("edgecnn.runtime.trackers", "TRACKER", "tracker")
DEFAULT_TRACKER = "bytetrack"

# A detection's track state: "tracked" (a confirmed track), "tentative" (a track started
# this frame that is not confirmed yet), "untracked" (a detection too weak to start one).
STATES = ("tracked", "tentative", "untracked")


class Tracker:
    def update(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray
               ) -> Tuple[np.ndarray, np.ndarray, List[str], List[int]]:
        """One frame: boxes (N, 4) x1 y1 x2 y2, scores (N,), classes (N,) -> per detection
        its track id (-1: none), its track's age in frames and its state, and the ids of
        confirmed tracks that ended at this frame."""
        raise NotImplementedError


@dataclass
class TrackerType:
    name: str
    create: Callable[[float], Tracker]  # the source's frame rate -> a fresh tracker
    summary: str = ""


def tracker_names() -> List[str]:
    return _TRACKERS.names()


def get_tracker(name: str) -> TrackerType:
    return _TRACKERS.get(name)
