"""Zones and lines behind the real tracker: ByteTrack through edgecnn.runtime.tracking
into Analytics.analyse, two objects passing each other, one of them occluded while it
crosses the line: each crossing counts once under a kept id, and the track `end`
events close the zone visits. Needs edgecnn[track] (scipy), so not marked runtime."""
import numpy as np

from edgecnn.runtime.analytics import Analytics, Line, Zone
from edgecnn.runtime.trackers.bytetrack import ByteTrack
from edgecnn.runtime.tracking import Tracking
from edgecnn.tasks.detect.result import Detections


def square(x, y, side=40.0):
    return [x - side / 2, y - side / 2, x + side / 2, y + side / 2]


def test_crossings_and_visits_through_bytetrack():
    tracking = Tracking(ByteTrack(fps=30))
    analytics = Analytics([Zone("right", [(238, 150), (400, 150), (400, 260), (238, 260)])],
                          [Line("gate", (200, 100), (200, 300))], frame_size=(640, 480))
    events = []
    for t in range(100):
        boxes = []
        if t < 60 and t not in range(40, 46):  # A, moving right, hidden while it reaches the line
            boxes.append(square(20 + 4 * t, 200))
        if t < 60:  # B, moving left
            boxes.append(square(260 - 4 * t, 204))
        result = Detections(np.array(boxes).reshape(-1, 4), np.full(len(boxes), 0.9), np.zeros(len(boxes), int),
                            ["person"], frame_index=t, capture_time=t / 30)
        tracking(result)
        events += analytics.analyse(result).events
    # A is track 1 (bottom-centre x = 20 + 4t), B track 2 (x = 260 - 4t)
    assert [(e.event, e.track_id, e.frame_index) for e in events if e.event == "cross"] == [
        ("cross", 2, 17), ("cross", 1, 47)]  # the first frames more than 4 px past the line: x 192 and 208
    assert [(e.line, e.direction) for e in events if e.event == "cross"] == [("gate", "out"), ("gate", "in")]
    visits = [(e.event, e.track_id, e.frame_index, e.track_ended) for e in events if e.event != "cross"]
    assert visits == [("enter", 2, 0, False), ("exit", 2, 6, False), ("enter", 1, 55, False),
                      ("exit", 1, 90, True)]  # A still inside when its track ends, 31 frames after it was last seen
    assert analytics.occupancy == {"right": {"person": 0}}
    assert analytics.line_counts == {"gate": {"in": {"person": 1}, "out": {"person": 1}}}
