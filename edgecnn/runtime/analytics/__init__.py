"""Analytics on a tracked stream: zones (polygons) that tracks enter, dwell in and
exit, and lines they cross, with per-label occupancy and cumulative line counts.
Torch-free, numpy only; decided on the frames' capture times.

    from edgecnn.runtime.analytics import Analytics, Line, Zone

    analytics = Analytics(zones=[Zone("door", [(0.1, 0.5), (0.4, 0.5), (0.4, 1), (0.1, 1)], fractions=True,
                                      labels=["person"], min_time=0.5, dwell=30)],
                          lines=[Line("gate", (320, 0), (320, 480), in_side="right")])
    for result in model.stream(source, track=True):
        frame = analytics.analyse(result, frame_size=(width, height))
        for event in frame.events:        # ZoneEvent (enter | exit | dwell) or LineCrossing (cross)
            print(event.to_dict())
        frame.occupancy["door"]           # {"person": 2}
        frame.line_counts["gate"]         # {"in": {"person": 7}, "out": {"person": 3}}

Zones: edgecnn/runtime/analytics/zones.py; lines and their direction convention:
lines.py; coordinates, anchors and the polygon checks: geometry.py; track state,
time and occupancy: engine.py.
"""
from edgecnn.runtime.analytics.engine import Analytics, AnalyticsFrame, Event
from edgecnn.runtime.analytics.geometry import ANCHORS, parse_points
from edgecnn.runtime.analytics.lines import Line, LineCrossing
from edgecnn.runtime.analytics.zones import Zone, ZoneEvent

__all__ = ["ANCHORS", "Analytics", "AnalyticsFrame", "Event", "Line", "LineCrossing", "Zone", "ZoneEvent",
           "parse_points"]
