"""Zones: polygons that tracked objects enter, stay in and leave.

Per zone and track a small state machine, run for all zones and all tracks of a frame
as numpy arrays (so ten zones and twenty objects cost a few array operations, not
two hundred Python steps):

- A track is *seen inside* a zone on a frame when its anchor point lies in the
  polygon and its label is one the zone counts.
- It *enters* once it has been seen inside continuously for `min_time` seconds
  (0: at once), and *exits* once seen outside continuously for `min_time`: inertia
  against a box that jitters over the edge. The times reported are back-dated to
  the first frame of the run, so `min_time` delays the event, not the measurement.
- A frame on which the track is missing (occluded, or a detection the tracker did not
  match) is neither inside nor outside: it keeps the run going and decides nothing.
  A track that ends (the tracker gives it up, or it is not seen for the engine's
  `track_timeout`) while inside exits then, with `track_ended` set.
- While inside, `dwell` seconds after it came in it gets a `dwell` event, and with
  `dwell_repeat` another every `dwell` seconds after that.
- A track that appears inside a zone (it was first detected there) enters it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.analytics.geometry import (PolygonSet, anchor_fraction, as_points, check_fractions,
                                                check_polygon, label_filter, label_names, number, resolve_points)

EPSILON = 1e-9  # seconds: frame times like 0.1 * k must reach thresholds like 0.3 exactly


@dataclass(frozen=True)
class Zone:
    """A named polygon. points: (x, y) corners in frame pixels, or fractions of the frame
    with fractions=True; labels: the labels it counts (empty: all); anchor: the point of
    a box that decides inside or outside (geometry.ANCHORS); min_time: seconds a track
    must be seen inside before it enters, and outside before it exits; dwell: seconds
    inside after which a `dwell` event is emitted (None: never), repeated every `dwell`
    seconds with dwell_repeat."""

    name: str
    points: Sequence[Tuple[float, float]]
    fractions: bool = False
    labels: Sequence[str] = ()
    anchor: str = "bottom-center"
    min_time: float = 0.0
    dwell: Optional[float] = None
    dwell_repeat: bool = False

    def __post_init__(self) -> None:
        if not str(self.name):
            raise UserError("a zone needs a name")
        owner = f"zone {self.name!r}"
        points = as_points(self.points, owner)
        check_polygon(points, owner)
        if self.fractions:
            check_fractions(points, owner)
        anchor_fraction(self.anchor, owner)
        min_time = number(self.min_time, "min_time", owner)
        if not min_time >= 0:
            raise UserError(f"{owner}: min_time must be 0 or more seconds, got {self.min_time}")
        if self.dwell is not None and not number(self.dwell, "dwell", owner) > 0:
            raise UserError(f"{owner}: dwell must be more than 0 seconds, got {self.dwell}")
        if self.dwell_repeat and self.dwell is None:
            raise UserError(f"{owner}: dwell_repeat needs dwell (the seconds between dwell events)")
        object.__setattr__(self, "points", tuple(tuple(float(v) for v in p) for p in points))
        object.__setattr__(self, "labels", label_names(self.labels))
        object.__setattr__(self, "min_time", min_time)
        if self.dwell is not None:
            object.__setattr__(self, "dwell", float(self.dwell))


@dataclass(frozen=True)
class ZoneEvent:
    """enter | exit | dwell of one track in one zone. label, class_id: the track's class
    when last seen inside, the one the zone counts it under (a track that turns into a
    label the zone does not count exits with the label it had); entered_at: the time
    of the first frame the track was seen inside; seconds: how long it has been inside
    (exit: until the first frame it was seen outside, or the last frame it was seen
    inside when the track ended); track_ended: an exit because the track ended, not
    because it was seen leaving."""

    event: str
    zone: str
    track_id: int
    label: str
    class_id: int
    frame_index: int
    time: float
    box: Tuple[float, float, float, float]
    entered_at: float
    seconds: float
    track_ended: bool = False

    def to_dict(self) -> dict:
        return {"event": self.event, "zone": self.zone, "track_id": self.track_id, "label": self.label,
                "class_id": self.class_id, "frame": self.frame_index, "time": round(self.time, 4),
                "box": [round(v, 1) for v in self.box], "entered_at": round(self.entered_at, 4),
                "seconds": round(self.seconds, 4), "track_ended": self.track_ended}


# The state of a (track, zone) pair, packed along the last axis of one float array so
# that a frame gathers and scatters it once: inside (1.0: entered and not exited), the
# start of the current run of frames that disagree with `inside` (NaN: none), the time
# it entered, when its next dwell event is due (inf: none), and its class when last
# seen inside (the one the zone counts it under until it exits).
INSIDE, RUN_START, ENTERED_AT, NEXT_DWELL, CLASS = range(5)
EMPTY = (0.0, np.nan, 0.0, np.inf, 0.0)


class ZoneStates:
    """The state of every (track row, zone) pair, as one (rows, zones, 5) array."""

    def __init__(self, zones: Sequence[Zone], capacity: int) -> None:
        self.zones, self.capacity = list(zones), capacity
        self.polygons: Optional[PolygonSet] = None
        self.min_time = np.array([z.min_time for z in self.zones], np.float64) - EPSILON
        self.dwell = np.array([z.dwell if z.dwell is not None else np.inf for z in self.zones], np.float64)
        self.repeat = np.array([z.dwell_repeat for z in self.zones], bool)
        self.filtered = np.array([bool(z.labels) for z in self.zones], bool)
        self.accepts = np.ones((len(self.zones), 0), bool)  # (zones, classes): the zone counts the class
        self.state = np.empty((capacity, len(self.zones), len(EMPTY)))
        self.state[...] = EMPTY

    def resolve(self, frame_size: Tuple[int, int]) -> None:
        self.polygons = PolygonSet([resolve_points(np.asarray(z.points), z.fractions, frame_size, f"zone {z.name!r}")
                                    for z in self.zones])

    def set_labels(self, labels: Sequence[str], class_count: int) -> None:
        """The classes each zone counts, from the detector's labels (index: class id;
        class ids past the labels have no name, so only zones of all labels count them)."""
        self.accepts = label_filter("zone", self.zones, labels, class_count)

    def grow(self, capacity: int) -> None:
        extra = np.empty((capacity - self.capacity,) + self.state.shape[1:])
        extra[...] = EMPTY
        self.state = np.concatenate([self.state, extra])
        self.capacity = capacity

    def seen_inside(self, anchors: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Anchors (N, zones or 1, 2) -> (N, zones): each detection's anchor lies in
        each zone and the zone counts its class."""
        inside = self.polygons.contains(anchors)
        if np.count_nonzero(self.filtered):
            inside &= self.accepts[:, classes].T
        return inside

    def observe(self, rows: np.ndarray, seen: np.ndarray, classes: np.ndarray, time: float
                ) -> Dict[str, List[Tuple[int, int, float, float, int]]]:
        """One frame's observations of the tracks in `rows` (seen: (len(rows), zones),
        inside or not; classes: their classes) -> the transitions, as (index in rows,
        zone, entered_at, seconds, class counted) per kind: exit, enter, dwell."""
        state = self.state[rows]
        inside, run_start = state[..., INSIDE], state[..., RUN_START]
        entered_at, next_dwell, counted = state[..., ENTERED_AT], state[..., NEXT_DWELL], state[..., CLASS]
        np.copyto(counted, classes[:, None], where=seen)
        disagree = seen != (inside > 0)
        # A run of disagreeing frames keeps its start (fmin ignores NaN: a new run starts now)
        run_start[...] = np.where(disagree, np.fmin(run_start, time), np.nan)
        flip = time - run_start >= self.min_time  # False where NaN: the observations agree
        events: Dict[str, List[Tuple[int, int, float, float, int]]] = {"exit": [], "enter": [], "dwell": []}
        if np.count_nonzero(flip):
            for i, k in zip(*np.nonzero(flip & ~seen)):
                events["exit"].append((i, k, entered_at[i, k], run_start[i, k] - entered_at[i, k], int(counted[i, k])))
                inside[i, k], next_dwell[i, k] = 0.0, np.inf
            for i, k in zip(*np.nonzero(flip & seen)):
                entered_at[i, k] = run_start[i, k]
                events["enter"].append((i, k, entered_at[i, k], time - entered_at[i, k], int(counted[i, k])))
                inside[i, k], next_dwell[i, k] = 1.0, entered_at[i, k] + self.dwell[k]
            run_start[flip] = np.nan
        due = time >= next_dwell - EPSILON  # next_dwell is inf unless inside
        due &= seen
        if np.count_nonzero(due):
            for i, k in zip(*np.nonzero(due)):
                events["dwell"].append((i, k, entered_at[i, k], time - entered_at[i, k], int(counted[i, k])))
                if self.repeat[k]:
                    periods = np.floor((time - entered_at[i, k] + EPSILON) / self.dwell[k]) + 1
                    next_dwell[i, k] = entered_at[i, k] + periods * self.dwell[k]
                else:
                    next_dwell[i, k] = np.inf
        self.state[rows] = state
        return events

    def end(self, row: int, last_seen: float) -> List[Tuple[int, float, float, int]]:
        """A track ended: per zone it was inside, (zone, entered_at, seconds inside:
        until it was first seen outside, else until it was last seen, class counted)."""
        out = []
        for k in np.flatnonzero(self.state[row, :, INSIDE] > 0):
            leaving = self.state[row, k, RUN_START]
            until = leaving if not np.isnan(leaving) else last_seen
            entered_at = float(self.state[row, k, ENTERED_AT])
            out.append((int(k), entered_at, float(until) - entered_at, int(self.state[row, k, CLASS])))
        self.state[row] = EMPTY
        return out

    def occupancy(self, untracked_seen: np.ndarray, untracked_classes: np.ndarray, class_count: int) -> np.ndarray:
        """(zones, classes) counts: tracks inside (by their class when last seen inside;
        rows of ended tracks are cleared) plus untracked detections seen inside this frame."""
        zone_count = len(self.zones)
        inside = self.state[..., INSIDE] > 0
        zones = np.nonzero(inside)[1]
        index = zones * class_count + self.state[..., CLASS][inside].astype(np.int64)
        if len(untracked_classes):
            u_rows, u_zones = np.nonzero(untracked_seen)
            index = np.concatenate([index, u_zones * class_count + untracked_classes[u_rows]])
        return np.bincount(index, minlength=zone_count * class_count).reshape(zone_count, class_count)
