"""The step of a run that turns a camera's tracked boxes into decisions: each result
gets `analytics` (the frame's zone and line events and counts, which its records, the
publishers and the clips read) and `places` (the zones and lines in frame pixels, which
the drawing reads)."""
from __future__ import annotations

from typing import Any, Dict, Sequence

from edgecnn.runtime.analytics.drawing import geometry_of
from edgecnn.runtime.analytics.engine import Analytics
from edgecnn.runtime.analytics.specs import build


class PlaceStage:
    def __init__(self, zones: Dict[str, Any], lines: Dict[str, Any], labels: Sequence[str] = ()) -> None:
        self.zones, self.lines = build(zones, lines, labels)
        self.analytics = Analytics(self.zones, self.lines)
        self.geometry = None
        self.labels = list(labels)

    def __call__(self, result, image_size) -> None:
        height, width = image_size
        frame = self.analytics.analyse(result, frame_size=(width, height))
        if self.geometry is None:
            self.geometry = geometry_of(self.zones, self.lines, (width, height))
        result.analytics, result.places = frame, self.geometry

    def described(self) -> Dict[str, Dict[str, Sequence[str]]]:
        """{"zones": {name: labels it counts}, "lines": {...}}: what discovery announces."""
        return {"zones": {zone.name: list(zone.labels or self.labels) for zone in self.zones},
                "lines": {line.name: list(line.labels or self.labels) for line in self.lines}}
