"""Counting accuracy of the analytics engine (edgecnn.runtime.analytics) on synthetic
tracks with known ground truth, beside supervision's LineZone and PolygonZone on the
same boxes (benchmarks/RESULTS.md, Zones and lines).

The scene: a 1280x720 frame at 30 fps, a line "gate" from (640, 80) to (640, 360)
(drawn top to bottom, so its left is the image's right: walking right is `in`, which
is also supervision's `in` for that line) and a zone "area", a pentagon in the lower
half. Objects follow piecewise-linear paths of their bottom-centre point; each
detection box gets Gaussian noise (1 px per corner coordinate); an occlusion drops an
object's detections for a while and keeps its track id, as a tracker's buffer does;
the tracker reports a track ended 1 s after its last detection.

Ground truth: for the line, the crossings each crafted scenario is built to make (a
person standing or swaying on the line crosses nothing); for the random traffic, the
crossings of the segment by the noise-free path. For the zone, the visits of the
noise-free path, sampled 20 times per frame: enter and exit counts, and the time
inside to compare dwell times against (exact to one frame period is the goal).

edgecnn: Line(margin=4 px), Zone(min_time=0.2 s, dwell=2 s, dwell_repeat), the
default bottom-centre anchor. supervision (only when it imports; it is not an
edgecnn dependency, run this script with a venv that has it, PYTHONPATH set to the
repository): LineZone with its default anchors (the four corners) and
minimum_crossing_threshold 1 (its default), with the bottom centre and 1, and with
the bottom centre and 3 (its guard against jitter); PolygonZone (bottom centre).
PolygonZone only says which detections are inside on each frame, so its
enter/exit/dwell here come from the usual loop over it: per tracker id, inside when
it is seen inside, outside when seen outside, unchanged while missing, out when its
track ends (the time inside then runs to its last detection, as edgecnn's does).
supervision has no dwell events.

    .venv/bin/python benchmarks/analytics_accuracy.py
    PYTHONPATH=. /tmp/sv-venv/bin/python benchmarks/analytics_accuracy.py   (with supervision)
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgecnn.runtime.analytics import Analytics, Line, Zone  # noqa: E402

try:
    import supervision as sv
except ImportError:
    sv = None

FPS = 30.0
PERIOD = 1.0 / FPS
WIDTH, HEIGHT = 1280, 720
GATE = ((640.0, 80.0), (640.0, 360.0))
AREA = [(520.0, 430.0), (900.0, 420.0), (980.0, 560.0), (820.0, 690.0), (470.0, 640.0)]
LABELS = ["person", "car"]
NOISE = 1.0  # px, standard deviation of each box coordinate
END_AFTER = 1.0  # s from a track's last detection to the tracker ending it
SUBSTEPS = 20  # ground-truth samples per frame
DWELL = 2.0


@dataclass
class Track:
    """An object: its bottom-centre path as (time, x, y) waypoints, its box size,
    occlusions (time spans with no detection) and an optional sway across x."""

    track_id: int
    waypoints: List[Tuple[float, float, float]]
    label: str = "person"
    size: Tuple[float, float] = (40.0, 100.0)
    hidden: List[Tuple[float, float]] = field(default_factory=list)
    sway: float = 0.0  # px amplitude, period 0.8 s (a person standing on the line, swaying)

    def position(self, time: float) -> Optional[np.ndarray]:
        times = [w[0] for w in self.waypoints]
        if time < times[0] - 1e-9 or time > times[-1] + 1e-9:
            return None
        x = np.interp(time, times, [w[1] for w in self.waypoints])
        y = np.interp(time, times, [w[2] for w in self.waypoints])
        return np.array([x, y])

    def visible(self, time: float) -> bool:
        return self.position(time) is not None and not any(a <= time < b for a, b in self.hidden)


@dataclass
class Scenario:
    name: str
    tracks: List[Track]
    crossings: Optional[Tuple[int, int]] = None  # (in, out) by design; None: from the noise-free paths
    note: str = ""


def walk(track_id, points, speed=120.0, start=0.0, **options) -> Track:
    """A track walking through `points` at `speed` px/s; a point (x, y, seconds) waits there."""
    waypoints, time = [], start
    previous = None
    for point in points:
        x, y = point[0], point[1]
        if previous is not None:
            time += float(np.hypot(x - previous[0], y - previous[1])) / speed
        waypoints.append((time, x, y))
        if len(point) > 2:
            time += point[2]
            waypoints.append((time, x, y))
        previous = (x, y)
    return Track(track_id, waypoints, **options)


def crafted() -> List[Scenario]:
    y = 220.0
    scenarios = [
        Scenario("crosses left to right", [walk(1, [(400, y), (900, y)])], (1, 0)),
        Scenario("crosses right to left", [walk(1, [(900, y), (400, y)])], (0, 1)),
        Scenario("stops on the line, turns back", [walk(1, [(400, y), (640, y, 3.0), (400, y)])], (0, 0)),
        Scenario("stops on the line, goes on", [walk(1, [(400, y), (640, y, 3.0), (900, y)])], (1, 0)),
        Scenario("sways on the line (+-1.5 px) for 5 s",
                 [walk(1, [(400, y), (640, y, 5.0), (400, y)], sway=1.5)], (0, 0)),
        Scenario("occluded while crossing (0.8 s)", [walk(1, [(400, y), (900, y)], hidden=[(1.6, 2.4)])], (1, 0)),
        Scenario("passes beside the end of the line (30 px)", [walk(1, [(400, 390), (900, 390)])], (0, 0)),
        Scenario("around the end, back through the line",
                 [walk(1, [(400, 400), (900, 400), (900, y), (400, y)])], (0, 1)),
        Scenario("two cross, one hides the other",
                 [walk(1, [(400, y), (900, y)]), walk(2, [(900, y + 10), (400, y + 10)], hidden=[(1.7, 2.5)])],
                 (1, 1)),
        Scenario("crosses back and forth 3 times",
                 [walk(1, [(500, y), (780, y), (500, y), (780, y), (500, y), (780, y)], speed=200)], (3, 2)),
        Scenario("visits the zone",
                 [walk(1, [(300, 600), (600, 560), (700, 520, 3.0), (800, 600), (1100, 600)])]),
        Scenario("visits the zone twice", [walk(1, [(300, 550), (700, 550, 1.0), (300, 550, 1.0), (700, 560, 2.0),
                                                    (300, 560)])]),
        Scenario("walks along the zone's edge, 3 px outside",
                 [walk(1, [(530, 426.74), (890, 417.26)], speed=60)]),
        Scenario("occluded inside the zone (0.9 s)",
                 [walk(1, [(300, 600), (700, 560, 4.0), (1100, 600)], hidden=[(4.0, 4.9)])]),
        Scenario("leaves the zone while occluded, then its track ends",
                 [walk(1, [(300, 600), (700, 560, 2.0), (1100, 600)], hidden=[(5.5, 99.0)])],
                 note="exit only at the track's end: the time inside is not observable"),
    ]
    return scenarios


def random_traffic(count: int, seed: int = 0) -> Scenario:
    """Objects on straight paths between random points of the frame's edges, with random
    occlusions; paths whose truth would be ambiguous (a visit to the zone, the part of
    it not occluded, or a gap between visits under 0.5 s; a crossing within 10 px of the
    gate's ends) are redrawn."""
    rng = np.random.default_rng(seed)
    tracks, start = [], 0.0
    while len(tracks) < count:
        a, b = _edge_point(rng), _edge_point(rng)
        speed = rng.uniform(60, 250)
        duration = float(np.hypot(*(b - a))) / speed
        label = LABELS[int(rng.random() < 0.3)]
        size = (40.0, 100.0) if label == "person" else (120.0, 80.0)
        hidden = []
        if rng.random() < 0.5:
            begin = rng.uniform(0, duration)
            hidden = [(start + begin, start + begin + rng.uniform(0.1, 0.9))]
        track = Track(len(tracks) + 1, [(start, *a), (start + duration, *b)], label, size, hidden)
        if _unambiguous(track):
            tracks.append(track)
            start += rng.uniform(0.0, 1.5)
    return Scenario(f"random traffic ({count} objects)", tracks, note="truth from the noise-free paths")


def _edge_point(rng) -> np.ndarray:
    side = rng.integers(4)
    t = rng.uniform(0.05, 0.95)
    return np.array([[t * WIDTH, 0.0], [t * WIDTH, HEIGHT], [0.0, t * HEIGHT], [WIDTH, t * HEIGHT]][side])


def _unambiguous(track: Track) -> bool:
    visits = zone_visits(track)
    if any(exit_ - enter < 0.5 for enter, exit_ in visits):
        return False
    for enter, exit_ in visits:
        if sum(track.visible(t) for t in np.arange(enter, exit_, PERIOD)) * PERIOD < 0.5:
            return False
    if any(b[0] - a[1] < 0.5 for a, b in zip(visits, visits[1:])):
        return False
    (x0, y0), (x1, y1) = track.waypoints[0][1:], track.waypoints[-1][1:]
    if (x0 - GATE[0][0]) * (x1 - GATE[0][0]) < 0:
        y_at = y0 + (y1 - y0) * (GATE[0][0] - x0) / (x1 - x0)
        if min(abs(y_at - GATE[0][1]), abs(y_at - GATE[1][1])) < 10:
            return False
    return True


# ---------------------------------------------------------------- ground truth
def zone_visits(track: Track) -> List[Tuple[float, float]]:
    """(enter, exit) times of the noise-free path in the zone, sampled SUBSTEPS times
    per frame; exit = the path's end when it ends inside."""
    polygon = np.array(AREA, np.float32)
    first, last = track.waypoints[0][0], track.waypoints[-1][0]
    times = np.arange(first, last + 1e-9, PERIOD / SUBSTEPS)
    visits, entered = [], None
    for time in times:
        x, y = track.position(time)
        inside = cv2.pointPolygonTest(polygon, (float(x), float(y)), False) > 0
        if inside and entered is None:
            entered = time
        elif not inside and entered is not None:
            visits.append((entered, time))
            entered = None
    if entered is not None:
        visits.append((entered, last))
    return visits


def line_crossings(track: Track) -> Tuple[int, int]:
    """(in, out) crossings of the gate segment by the noise-free path (walking right: in)."""
    crossings = [0, 0]
    (x_top, y_top), (_, y_bottom) = GATE
    for (_, x0, y0), (_, x1, y1) in zip(track.waypoints, track.waypoints[1:]):
        if (x0 - x_top) * (x1 - x_top) < 0:
            y_at = y0 + (y1 - y0) * (x_top - x0) / (x1 - x0)
            if y_top <= y_at <= y_bottom:
                crossings[0 if x1 > x0 else 1] += 1
    return crossings[0], crossings[1]


# ---------------------------------------------------------------- the frames
def frames(scenario: Scenario, noise: float, seed: int = 1):
    """Per frame: time, boxes (N, 4), class ids, track ids, ended track ids."""
    rng = np.random.default_rng(seed)
    tracks = scenario.tracks
    last_seen: Dict[int, float] = {}
    ended = set()
    finish = max(t.waypoints[-1][0] for t in tracks) + END_AFTER + 2 * PERIOD
    for index in range(int(finish * FPS) + 1):
        time = index * PERIOD
        boxes, classes, ids = [], [], []
        for track in tracks:
            if not track.visible(time):
                continue
            x, y = track.position(time)
            x += track.sway * np.sin(2 * np.pi * time / 0.8)
            width, height = track.size
            box = np.array([x - width / 2, y - height, x + width / 2, y]) + rng.normal(0, noise, 4)
            boxes.append(box), classes.append(LABELS.index(track.label)), ids.append(track.track_id)
            last_seen[track.track_id] = time
        ending = [i for i, seen in last_seen.items() if i not in ended and i not in ids and time - seen >= END_AFTER]
        ended.update(ending)
        yield index, time, np.array(boxes).reshape(-1, 4), np.array(classes, np.int64), np.array(ids, np.int64), ending


# ---------------------------------------------------------------- the counters
@dataclass
class Counts:
    line_in: int = 0
    line_out: int = 0
    visits: Dict[int, List[List[float]]] = field(default_factory=dict)  # track -> [[enter, seconds or None]]
    dwell_events: Dict[int, List[Tuple[float, float]]] = field(default_factory=dict)  # track -> [(entered_at, time)]

    @property
    def enters(self) -> int:
        return sum(len(v) for v in self.visits.values())

    @property
    def exits(self) -> int:
        return sum(1 for v in self.visits.values() for visit in v if visit[1] is not None)


def run_edgecnn(scenario: Scenario, noise: float) -> Counts:
    analytics = Analytics([Zone("area", AREA, min_time=0.2, dwell=DWELL, dwell_repeat=True)],
                          [Line("gate", *GATE, margin=4.0)], frame_size=(WIDTH, HEIGHT))
    counts = Counts()
    for index, time, boxes, classes, ids, ended in frames(scenario, noise):
        for event in analytics.update(boxes, classes, ids, LABELS, time, index, ended=ended).events:
            if event.event == "cross":
                counts.line_in += event.direction == "in"
                counts.line_out += event.direction == "out"
            elif event.event == "enter":
                counts.visits.setdefault(event.track_id, []).append([event.entered_at, None])
            elif event.event == "exit":
                counts.visits[event.track_id][-1][1] = event.seconds
            elif event.event == "dwell":
                counts.dwell_events.setdefault(event.track_id, []).append((event.entered_at, event.time))
    return counts


def run_supervision(scenario: Scenario, noise: float, line_anchors, threshold: int = 1) -> Counts:
    line = sv.LineZone(sv.Point(*GATE[0]), sv.Point(*GATE[1]), triggering_anchors=line_anchors,
                       minimum_crossing_threshold=threshold)
    zone = sv.PolygonZone(np.array(AREA, np.int64), triggering_anchors=(sv.Position.BOTTOM_CENTER,))
    counts, inside = Counts(), {}
    for index, time, boxes, classes, ids, ended in frames(scenario, noise):
        detections = sv.Detections(xyxy=boxes.astype(np.float32), class_id=classes, tracker_id=ids)
        line.trigger(detections)
        for track_id, now in zip(ids.tolist(), zone.trigger(detections).tolist()):
            was = inside.get(track_id, False)
            if now and not was:
                counts.visits.setdefault(track_id, []).append([time, None])
            elif was and not now:
                counts.visits[track_id][-1][1] = time - counts.visits[track_id][-1][0]
            inside[track_id] = now
        for track_id in ended:
            if inside.pop(track_id, False):
                visit = counts.visits[track_id][-1]
                visit[1] = time - END_AFTER - visit[0]  # until it was last seen
    counts.line_in, counts.line_out = line.in_count, line.out_count
    return counts


# ---------------------------------------------------------------- comparison
def truth_of(scenario: Scenario):
    crossings = scenario.crossings
    if crossings is None:
        totals = [line_crossings(track) for track in scenario.tracks]
        crossings = (sum(t[0] for t in totals), sum(t[1] for t in totals))
    visits = {track.track_id: zone_visits(track) for track in scenario.tracks}
    return crossings, visits


def _seen(track: Track, time: float) -> bool:
    """The track was detected on the first frame at or after `time`."""
    return track.visible(np.ceil(time * FPS - 1e-6) * PERIOD)


def dwell_errors(counts: Counts, visits, scenario: Scenario) -> Tuple[List[float], List[float]]:
    """|measured - true| time inside per visit, where the visit counts agree per track:
    for the visits whose entry and exit were seen, and for those whose entry or exit
    fell in an occlusion (where no method can know the time)."""
    seen, occluded = [], []
    tracks = {track.track_id: track for track in scenario.tracks}
    for track_id, true in visits.items():
        measured = counts.visits.get(track_id, [])
        if len(measured) != len(true):
            continue
        for (a, b), (_, seconds) in zip(true, measured):
            if seconds is not None:
                visible = _seen(tracks[track_id], a) and _seen(tracks[track_id], b)
                (seen if visible else occluded).append(abs(seconds - (b - a)))
    return seen, occluded


def dwell_event_errors(counts: Counts, visits, scenario: Scenario) -> Tuple[int, int, List[float]]:
    """Over the visits whose entry and exit were seen (and whose track's visit count
    agrees): dwell events expected (one per full DWELL seconds inside), emitted, and
    how far each came from its due time (the true entry + k * DWELL)."""
    expected = emitted = 0
    late = []
    tracks = {track.track_id: track for track in scenario.tracks}
    for track_id, true in visits.items():
        measured = counts.visits.get(track_id, [])
        if len(measured) != len(true):
            continue
        for (a, b), (entered_at, _) in zip(true, measured):
            if not (_seen(tracks[track_id], a) and _seen(tracks[track_id], b)):
                continue
            times = [time for entered, time in counts.dwell_events.get(track_id, []) if entered == entered_at]
            expected += int((b - a) // DWELL)
            emitted += len(times)
            late += [time - (a + DWELL * (k + 1)) for k, time in enumerate(times)]
    return expected, emitted, late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=150, help="objects in the random traffic (default 150)")
    parser.add_argument("--noise", type=float, default=NOISE, help=f"px, box noise (default {NOISE})")
    arguments = parser.parse_args()
    noise = arguments.noise
    scenarios = crafted() + [random_traffic(arguments.objects)]
    engines = [("edgecnn", run_edgecnn)]
    if sv is not None:
        corners = (sv.Position.TOP_LEFT, sv.Position.TOP_RIGHT, sv.Position.BOTTOM_LEFT, sv.Position.BOTTOM_RIGHT)
        bottom = (sv.Position.BOTTOM_CENTER,)
        engines += [("supervision: LineZone corners, threshold 1 (its defaults)",
                     lambda s, noise: run_supervision(s, noise, corners)),
                    ("supervision: LineZone bottom centre, threshold 1",
                     lambda s, noise: run_supervision(s, noise, bottom)),
                    ("supervision: LineZone bottom centre, threshold 3",
                     lambda s, noise: run_supervision(s, noise, bottom, 3))]
        print(f"supervision {sv.__version__}")
    else:
        print("supervision is not installed here: edgecnn alone")
    print(f"{len(scenarios)} scenarios, {FPS:g} fps, box noise {noise:g} px; frame period {PERIOD * 1000:.1f} ms\n")

    results = {name: [run(s, noise) for s in scenarios] for name, run in engines}
    truths = [truth_of(s) for s in scenarios]
    header = "| scenario | truth: line in/out, zone enter/exit | " + " | ".join(name for name, _ in engines) + " |"
    print(header)
    print("|---" * (2 + len(engines)) + "|")
    exact = {name: [0, 0] for name, _ in engines}
    for number, (scenario, (crossings, visits)) in enumerate(zip(scenarios, truths)):
        true_enters = sum(len(v) for v in visits.values())
        cells = []
        for name, _ in engines:
            counts = results[name][number]
            line_ok = (counts.line_in, counts.line_out) == tuple(crossings)
            zone_ok = counts.enters == true_enters and counts.exits == true_enters
            exact[name][0] += line_ok
            exact[name][1] += zone_ok
            cells.append(f"{counts.line_in}/{counts.line_out}{'' if line_ok else ' ✗'}, "
                         f"{counts.enters}/{counts.exits}{'' if zone_ok else ' ✗'}")
        note = f" ({scenario.note})" if scenario.note else ""
        print(f"| {scenario.name}{note} | {crossings[0]}/{crossings[1]}, {true_enters}/{true_enters} | "
              + " | ".join(cells) + " |")
    print()
    print("| | " + " | ".join(name for name, _ in engines) + " |")
    print("|---" * (1 + len(engines)) + "|")
    print("| scenarios with exact line counts | " + " | ".join(f"{exact[n][0]}/{len(scenarios)}" for n, _ in engines)
          + " |")
    print("| scenarios with exact zone enter/exit counts | "
          + " | ".join(f"{exact[n][1]}/{len(scenarios)}" for n, _ in engines) + " |")
    observable = [i for i, s in enumerate(scenarios) if "not observable" not in s.note]
    seen_cells, occluded_cells = [], []
    for name, _ in engines:
        errors = [dwell_errors(results[name][i], truths[i][1], scenarios[i]) for i in range(len(scenarios))]
        seen = [e for seen, _ in errors for e in seen]
        occluded = [e for _, occluded in errors for e in occluded]
        within = sum(e <= PERIOD + 1e-9 for e in seen)
        seen_cells.append(f"{within}/{len(seen)} within one frame, max {max(seen, default=0) * 1000:.1f} ms")
        occluded_cells.append(f"{len(occluded)} visits, max {max(occluded, default=0) * 1000:.1f} ms")
    print("| time inside per visit vs truth, entry and exit seen | " + " | ".join(seen_cells) + " |")
    print("| the same, entry or exit occluded (not observable) | " + " | ".join(occluded_cells) + " |")
    expected = emitted = 0
    late: List[float] = []
    for i in observable:
        e, m, lateness = dwell_event_errors(results["edgecnn"][i], truths[i][1], scenarios[i])
        expected, emitted, late = expected + e, emitted + m, late + lateness
    within = sum(abs(v) <= PERIOD + 1e-9 for v in late)
    print(f"| dwell events ({DWELL:g} s, repeated), entry and exit seen: expected / emitted; time from due | "
          f"{expected} / {emitted}; "
          f"{within}/{len(late)} within one frame, max {max(map(abs, late), default=0) * 1000:.1f} ms |"
          + " — |" * (len(engines) - 1))


if __name__ == "__main__":
    main()
