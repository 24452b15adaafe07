"""The analytics engine: each frame's tracked boxes in, zone and line events and counts
out. It keeps one row of state per track (rows reused once a track ends), so that a
track that goes missing for a few frames and is found again under the same id (as
ByteTrack does through an occlusion) carries on where it was. A track's state is
dropped when the tracker reports it ended, or when it has not been seen for
`track_timeout` seconds (for trackers that report no ends; keep it above the
tracker's own buffer, or a track found again after it would count as new).

Time is the frame's capture time in seconds, passed in: events and durations follow
the frames, not the clock of the machine analysing them, so a recorded stream gives
the same events on every run and dwell times are exact to one frame period.

Occupancy of a zone, per label: the tracks that have entered it and not exited
(a track missing for a few frames is still there), plus the detections with no
track (track id -1: too weak to start a track, or a stream without tracking) whose
anchor lies in the zone on this frame. Untracked detections have no identity, so
they never make events or cross lines; they do show in what a zone holds now.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.analytics.geometry import anchor_fraction, anchor_points
from edgecnn.runtime.analytics.lines import Line, LineCrossing, LineStates
from edgecnn.runtime.analytics.zones import EPSILON, Zone, ZoneEvent, ZoneStates

Event = Union[ZoneEvent, LineCrossing]
INITIAL_ROWS = 64


@dataclass
class AnalyticsFrame:
    """What one frame changed. occupancy: per zone, objects inside per label (every zone,
    every frame); line_counts: per line, cumulative crossings {"in": {label: n}, "out":
    {label: n}}; changed_zones / changed_lines: those whose counts differ from the
    previous frame (all of them on the first frame), for publishing on change. The
    count dicts are shared between frames while they do not change: read, do not modify."""

    frame_index: int
    time: float
    events: List[Event]
    occupancy: Dict[str, Dict[str, int]]
    line_counts: Dict[str, Dict[str, Dict[str, int]]]
    changed_zones: Tuple[str, ...]
    changed_lines: Tuple[str, ...]

    def to_dict(self) -> dict:
        zones = {name: {"occupancy": dict(counts), "total": sum(counts.values()), "changed": name in self.changed_zones}
                 for name, counts in self.occupancy.items()}
        lines = {name: {"in": dict(counts["in"]), "out": dict(counts["out"]), "in_total": sum(counts["in"].values()),
                        "out_total": sum(counts["out"].values()), "changed": name in self.changed_lines}
                 for name, counts in self.line_counts.items()}
        return {"frame": self.frame_index, "time": round(self.time, 4),
                "events": [event.to_dict() for event in self.events], "zones": zones, "lines": lines}


class Analytics:
    """Zones and lines applied to a tracked stream. frame_size (width, height) resolves
    the geometry (fractions of the frame, and the check that pixel points lie in it)
    now; without it, the first frame's size does."""

    def __init__(self, zones: Sequence[Zone] = (), lines: Sequence[Line] = (),
                 frame_size: Optional[Tuple[int, int]] = None, track_timeout: Optional[float] = 5.0) -> None:
        _check_unique([zone.name for zone in zones], "zone")
        _check_unique([line.name for line in lines], "line")
        if track_timeout is not None and not track_timeout > 0:
            raise UserError(f"track_timeout must be more than 0 seconds, got {track_timeout}")
        self.zones, self.lines = list(zones), list(lines)
        self.track_timeout = np.inf if track_timeout is None else float(track_timeout)
        self.frame_size: Optional[Tuple[int, int]] = None
        capacity = INITIAL_ROWS
        self._zone_states = ZoneStates(self.zones, capacity)
        self._line_states = LineStates(self.lines, capacity)
        # Anchor points are computed once per frame for each distinct anchor; with one
        # anchor for all (the usual case) the zones and lines share its (N, 1, 2) points.
        anchors = [zone.anchor for zone in self.zones] + [line.anchor for line in self.lines]
        distinct = list(dict.fromkeys(anchors))
        self._anchor_fractions = np.array([anchor_fraction(a, "") for a in distinct], np.float64).reshape(-1, 2)
        self._zone_anchor = np.array([distinct.index(zone.anchor) for zone in self.zones], np.int64)
        self._line_anchor = np.array([distinct.index(line.anchor) for line in self.lines], np.int64)
        self._row_of: Dict[int, int] = {}
        self._free: List[int] = list(range(capacity - 1, -1, -1))
        self._last_seen = np.full(capacity, np.inf)  # inf: a free row, never stale
        self._class = np.zeros(capacity, np.int64)
        self._box = np.zeros((capacity, 4))
        self._track_id = np.zeros(capacity, np.int64)
        self._labels: Optional[Sequence[str]] = None
        self._label_names: Tuple[str, ...] = ()
        self._names_of_class: Tuple[str, ...] = ()
        self._occupancy = np.zeros((len(self.zones), 0), np.int64)
        self._zones_shown = np.zeros((len(self.zones), 0), bool)  # (zone, class) reported at least once
        self._lines_shown = np.zeros((len(self.lines), 0), bool)
        self._occupancy_dicts: List[Dict[str, int]] = [{} for _ in self.zones]
        self._count_dicts: List[Dict[str, Dict[str, int]]] = [{"in": {}, "out": {}} for _ in self.lines]
        # What every frame returns, rebuilt (never changed in place) when a count changes
        self._occupancy_view: Dict[str, Dict[str, int]] = {}
        self._counts_view: Dict[str, Dict[str, Dict[str, int]]] = {}
        self._first = True
        self._untracked_before = False
        if frame_size is not None:
            self._resolve(frame_size)

    # ---------------------------------------------------------------- set-up
    def _resolve(self, frame_size: Optional[Tuple[int, int]]) -> None:
        if frame_size is None:
            raise UserError("zones and lines need the frame size (width, height) on the first frame")
        width, height = (int(v) for v in frame_size)
        if width <= 0 or height <= 0:
            raise UserError(f"the frame size must be positive, got {width}x{height}")
        self._zone_states.resolve((width, height))
        self._line_states.resolve((width, height))
        self.frame_size = (width, height)

    def _use_labels(self, labels: Sequence[str], classes: np.ndarray) -> None:
        """Which classes each zone and line counts, recomputed when the labels change or
        a class id beyond them appears."""
        width = self._occupancy.shape[1]
        if labels is self._labels and not np.count_nonzero(classes >= width):
            return
        class_count = max(len(labels), int(classes.max()) + 1 if len(classes) else 0)
        names = tuple(str(label) for label in labels)
        if names == self._label_names and class_count <= self._occupancy.shape[1]:
            self._labels = labels
            return
        class_count = max(class_count, self._occupancy.shape[1])
        self._zone_states.set_labels(names, class_count)
        self._line_states.set_labels(names, class_count)
        self._occupancy = _widen(self._occupancy, class_count)
        self._zones_shown = _widen(self._zones_shown, class_count)
        self._lines_shown = _widen(self._lines_shown, class_count)
        self._labels, self._label_names = labels, names
        self._names_of_class = names + tuple(f"class {c}" for c in range(len(names), class_count))

    def _rows(self, track_ids: np.ndarray) -> np.ndarray:
        """The state rows of these tracks, new rows for new tracks."""
        rows = []
        for track_id in track_ids.tolist():
            row = self._row_of.get(track_id)
            if row is None:
                if not self._free:
                    self._grow()
                row = self._row_of[track_id] = self._free.pop()
                self._track_id[row] = track_id
            rows.append(row)
        return np.array(rows, np.int64)

    def _grow(self) -> None:
        old = len(self._last_seen)
        capacity = 2 * old
        self._zone_states.grow(capacity)
        self._line_states.grow(capacity)
        self._last_seen = np.concatenate([self._last_seen, np.full(old, np.inf)])
        self._class = np.concatenate([self._class, np.zeros(old, np.int64)])
        self._box = np.concatenate([self._box, np.zeros((old, 4))])
        self._track_id = np.concatenate([self._track_id, np.zeros(old, np.int64)])
        self._free.extend(range(capacity - 1, old - 1, -1))

    # ---------------------------------------------------------------- one frame
    def update(self, boxes, classes, track_ids, labels: Sequence[str], time: float, frame_index: int = 0,
               frame_size: Optional[Tuple[int, int]] = None, ended: Sequence[int] = ()) -> AnalyticsFrame:
        """One frame: boxes (N, 4) x1 y1 x2 y2 in frame pixels, class ids (N,), track ids
        (N,; -1 or None: untracked), the detector's labels (index: class id), the frame's
        capture time in seconds, and the ids of tracks that ended at this frame."""
        if self.frame_size is None:
            self._resolve(frame_size)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        classes = np.asarray(classes, np.int64).reshape(-1)
        ids = (np.full(len(classes), -1, np.int64) if track_ids is None
               else np.asarray(track_ids, np.int64).reshape(-1))
        if not (len(boxes) == len(classes) == len(ids)):
            raise ValueError(f"{len(boxes)} boxes, {len(classes)} classes and {len(ids)} track ids")
        self._use_labels(labels, classes)
        time = float(time)
        tracked = np.flatnonzero(ids >= 0)
        everything_tracked = len(tracked) == len(ids)
        untracked = tracked[:0] if everything_tracked else np.flatnonzero(ids < 0)
        tracked_boxes = boxes if everything_tracked else boxes[tracked]
        tracked_classes = classes if everything_tracked else classes[tracked]
        rows = self._rows(ids[tracked])
        relabelled = np.count_nonzero(self._class[rows] != tracked_classes)
        self._last_seen[rows] = time
        self._class[rows] = tracked_classes
        self._box[rows] = tracked_boxes

        events: List[Event] = []
        points = anchor_points(boxes, self._anchor_fractions)
        single = len(self._anchor_fractions) == 1
        if self.zones:
            seen = self._zone_states.seen_inside(points if single else points[:, self._zone_anchor], classes)
            transitions = self._zone_states.observe(rows, seen if everything_tracked else seen[tracked],
                                                    tracked_classes, time)
            for kind in ("exit", "enter", "dwell"):
                for i, k, entered_at, seconds, class_id in transitions[kind]:
                    events.append(ZoneEvent(kind, self.zones[k].name, int(ids[tracked[i]]),
                                            self._names_of_class[class_id], class_id, frame_index, time,
                                            _box(tracked_boxes[i]), float(entered_at), float(seconds)))
        zone_events = len(events)
        crossed_lines = set()
        if self.lines:
            line_points = points if single else points[:, self._line_anchor]
            line_points = line_points if everything_tracked else line_points[tracked]
            crossings = self._line_states.observe(rows, line_points, tracked_classes, tracked_boxes)
            for i, k, direction, point in crossings:
                events.append(LineCrossing(self.lines[k].name, direction, int(ids[tracked[i]]),
                                           self._names_of_class[tracked_classes[i]], int(tracked_classes[i]),
                                           frame_index, time, _box(tracked_boxes[i]), point))
                crossed_lines.add(k)

        ending = [self._row_of[int(track_id)] for track_id in ended if int(track_id) in self._row_of]
        stale = np.flatnonzero(self._last_seen < time - self.track_timeout - EPSILON)
        for row in dict.fromkeys(ending + stale.tolist()):
            exits = self._end(row, frame_index, time)
            events.extend(exits)
            zone_events += len(exits)

        changed_zones = ()
        # Occupancy changes with a zone event, an inside track's new label, or untracked
        # detections (this frame's, or the previous frame's that are gone)
        if self.zones and (self._first or zone_events or relabelled or len(untracked)
                           or self._untracked_before):
            occupancy = self._zone_states.occupancy(seen[untracked], classes[untracked], self._occupancy.shape[1])
            difference = occupancy != self._occupancy
            if np.count_nonzero(difference):
                changed_zones = np.flatnonzero(difference.any(axis=1))
            self._occupancy = occupancy
        self._untracked_before = len(untracked) > 0
        if self._first:
            changed_zones, crossed_lines = np.arange(len(self.zones)), set(range(len(self.lines)))
            self._first = False
        if len(changed_zones):
            for k in changed_zones:
                self._occupancy_dicts[k] = self._zone_counts(k)
            self._occupancy_view = {zone.name: counts for zone, counts in zip(self.zones, self._occupancy_dicts)}
        if crossed_lines:
            for k in crossed_lines:
                self._count_dicts[k] = self._line_counts(k)
            self._counts_view = {line.name: counts for line, counts in zip(self.lines, self._count_dicts)}
        return AnalyticsFrame(frame_index, time, events, self._occupancy_view, self._counts_view,
                              tuple(self.zones[k].name for k in changed_zones),
                              tuple(self.lines[k].name for k in sorted(crossed_lines)))

    def analyse(self, result, frame_size: Optional[Tuple[int, int]] = None) -> AnalyticsFrame:
        """One tracked Detections result (edgecnn.tasks.detect.result): its confirmed
        tracks make events (tentative tracks count as untracked until confirmed), its
        capture time is the frame's time, its `end` track events end tracks here."""
        track_ids = None
        if result.track_ids is not None:
            track_ids = result.track_ids
            if result.track_states is not None:
                confirmed = np.array([state == "tracked" for state in result.track_states], bool)
                track_ids = np.where(confirmed, track_ids, -1)
        ended = [event.track_id for event in result.events if event.event == "end"]
        return self.update(result.boxes, result.classes, track_ids, result.labels, result.capture_time,
                           result.frame_index, frame_size, ended)

    def _end(self, row: int, frame_index: int, time: float) -> List[ZoneEvent]:
        track_id = int(self._track_id[row])
        events = [ZoneEvent("exit", self.zones[k].name, track_id, self._names_of_class[class_id], class_id,
                            frame_index, time, _box(self._box[row]), entered_at, seconds, track_ended=True)
                  for k, entered_at, seconds, class_id in self._zone_states.end(row, float(self._last_seen[row]))]
        self._line_states.clear(row)
        del self._row_of[track_id]
        self._last_seen[row] = np.inf
        self._free.append(row)
        return events

    # ---------------------------------------------------------------- counts
    def _zone_counts(self, k: int) -> Dict[str, int]:
        """A zone's occupancy per label: the labels it counts, or (counting all) every
        label it has held so far, so that a label dropping to 0 is reported as 0."""
        accepted = self._zone_states.accepts[k]
        self._zones_shown[k] |= self._occupancy[k] > 0
        shown = accepted & (self._zones_shown[k] | self._zone_states.filtered[k])
        return _by_label(self._names_of_class, np.flatnonzero(shown), self._occupancy[k])

    def _line_counts(self, k: int) -> Dict[str, Dict[str, int]]:
        counts = self._line_states.counts[k]
        self._lines_shown[k] |= counts.sum(axis=1) > 0
        shown = np.flatnonzero(self._line_states.accepts[k] & (self._lines_shown[k] | self._line_states.filtered[k]))
        return {"in": _by_label(self._names_of_class, shown, counts[:, 0]),
                "out": _by_label(self._names_of_class, shown, counts[:, 1])}

    @property
    def occupancy(self) -> Dict[str, Dict[str, int]]:
        return {zone.name: dict(counts) for zone, counts in zip(self.zones, self._occupancy_dicts)}

    @property
    def line_counts(self) -> Dict[str, Dict[str, Dict[str, int]]]:
        return {line.name: {"in": dict(c["in"]), "out": dict(c["out"])}
                for line, c in zip(self.lines, self._count_dicts)}


def _by_label(names: Sequence[str], classes: np.ndarray, counts: np.ndarray) -> Dict[str, int]:
    """Counts per class -> per label name (classes sharing a name add up)."""
    out: Dict[str, int] = {}
    for c in classes.tolist():
        out[names[c]] = out.get(names[c], 0) + int(counts[c])
    return out


def _widen(array: np.ndarray, columns: int) -> np.ndarray:
    wider = np.zeros((array.shape[0], columns) + array.shape[2:], array.dtype)
    wider[:, :array.shape[1]] = array
    return wider


def _box(box: np.ndarray) -> Tuple[float, float, float, float]:
    return tuple(float(v) for v in box)


def _check_unique(names: List[str], kind: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise UserError(f"two {kind}s are named {name!r}: {kind} names must differ")
        seen.add(name)
