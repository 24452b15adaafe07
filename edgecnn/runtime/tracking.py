"""Tracking on a stream: a tracker (edgecnn.runtime.trackers) applied to each frame's
detections, stamping every detection with its track id, the track's age and state,
and the frame's track events, the way Frigate reports objects:

    new     a track is confirmed (the object is there)
    update  a confirmed track's class changes
    end     a confirmed track is lost for good (or its object merged into another track)

A robot program reacts to the events instead of comparing box lists frame by frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.trackers import DEFAULT_TRACKER, Tracker, get_tracker

EVENTS = ("new", "update", "end")


@dataclass(frozen=True)
class TrackEvent:
    """One event of one track, with what the track last showed."""

    event: str  # new | update | end
    track_id: int
    label: str
    class_id: int
    score: float
    box: Tuple[float, float, float, float]  # x1 y1 x2 y2, frame pixels
    age: int  # frames since the track started
    frame_index: int  # the frame this event belongs to
    first_frame: int  # the frame the track started on
    previous_label: Optional[str] = None  # update: the class before


class Tracking:
    """Runs `tracker` on each Detections result and fills its track fields and events."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self._known: Dict[int, dict] = {}  # confirmed track id -> what it last showed

    def __call__(self, result) -> None:
        if not hasattr(result, "boxes"):
            raise UserError("tracking needs a detector (this model classifies whole frames)")
        ids, ages, states, ended = self.tracker.update(result.boxes, result.scores, result.classes)
        result.track_ids = np.asarray(ids, np.int64)
        result.track_ages = np.asarray(ages, np.int64)
        result.track_states = list(states)
        events: List[TrackEvent] = []
        for item in result:
            if item.state != "tracked":
                continue
            known = self._known.get(item.track_id)
            first = result.frame_index - item.age + 1
            if known is None:
                kind, previous = "new", None
            elif known["class_id"] != item.class_id:
                kind, previous = "update", known["label"]
            else:
                kind = previous = None
            self._known[item.track_id] = dict(label=item.label, class_id=item.class_id, score=item.score,
                                              box=item.box, age=item.age, first_frame=first)
            if kind:
                events.append(TrackEvent(kind, item.track_id, item.label, item.class_id, item.score, item.box,
                                         item.age, result.frame_index, first, previous))
        for track_id in ended:
            known = self._known.pop(int(track_id), None)
            if known is not None:
                events.append(TrackEvent("end", int(track_id), known["label"], known["class_id"], known["score"],
                                         known["box"], known["age"], result.frame_index, known["first_frame"]))
        result.events = events


def open_tracking(track: Union[bool, str, Tracker, None], fps: float = 30.0) -> Optional[Tracking]:
    """track: True (the default tracker), a tracker's name, a Tracker, or None/False."""
    if track is None or track is False:
        return None
    if isinstance(track, Tracker):
        return Tracking(track)
    name = DEFAULT_TRACKER if track is True else str(track)
    return Tracking(get_tracker(name).create(fps))
