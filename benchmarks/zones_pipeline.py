"""Counting accuracy of zones and lines through the whole pipeline: rendered videos
run by `edgecnn run --source VIDEO --track --zone ... --line ... --json RECORDS` (the bundled
detector, ByteTrack, the analytics engine), against the counts the videos were drawn to make,
beside supervision's LineZone and PolygonZone on the same tracked boxes
(benchmarks/RESULTS.md, "Zones and lines").

The scene: 512x384 at 15 fps (frame period 66.7 ms), shapes the bundled detector
knows (circle, rectangle, triangle; edgecnn.core.scenes) over a textured background,
written as MJPG AVI. A line "gate" from (256, 30) to (256, 230) (drawn downwards, so
walking right is `in`, as for supervision) and a zone "bay", a quadrilateral in the
lower right that the line does not reach. Each object follows waypoints of its
centre; a jitter is a sinusoid across the line added to the drawn position; an
occluder is a shape drawn over another.

Ground truth comes from the intended paths (without the jitter), through the
bottom centre of each shape's true box (the engine's default anchor): line crossings
are sign changes of the anchor's side of the line where it meets the segment (an
anchor that stops on the line keeps the side it came from), zone visits are the spans
of the path sampled 20 times a frame with the anchor in the polygon (a visit's true
time inside is exit - enter); dwell events are due 2 s, 4 s, ... after the true entry.

edgecnn: the command as users run it; zone min_time 0.2 s, dwell 2 s repeated; line
margin 4 px with the default margin_fraction 0.15 (the band is the wider of 4 px and
0.15 of the box's extent across the line), and again with margin 10 px (wider than
the widest jitter drawn). Its counts are read from the event records; the time inside a visit
is the exit event's `seconds`. A second column runs the same engine
(edgecnn.runtime.analytics) on the true boxes with true ids: where it is exact and
the pipeline is not, the detector or the tracker lost the count, not the engine.
For that, each true object is matched to the tracked boxes (IoU >= 0.3 per frame)
and its distinct track ids are counted (ids per object: 1 when the tracker kept it).

supervision (0.31.2, in a separate venv: it is not an edgecnn dependency): the same
confirmed tracked boxes and ids, read from the same JSON records, into LineZone
(its defaults: the four corners, minimum_crossing_threshold 1; the bottom centre with
threshold 1 and with 3) and PolygonZone (bottom centre; enter/exit per tracker id from
its per-frame membership: unchanged while missing, out when the track ends).

    .venv/bin/python benchmarks/zones_pipeline.py [--keep DIR] [--supervision /tmp/sv-venv/bin/python]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS = 512, 384, 15.0
PERIOD = 1.0 / FPS
GATE = ((256.0, 30.0), (256.0, 230.0))
BAY = [(300.0, 262.0), (488.0, 250.0), (500.0, 372.0), (310.0, 378.0)]
MIN_TIME, DWELL, MARGIN = 0.2, 2.0, 4.0  # MARGIN: the line's default
WIDE_MARGIN = 10.0  # px: more than the widest jitter drawn (8 px)
SUBSTEPS = 20  # ground-truth samples per frame
TAIL = 1.5  # seconds of empty scene after the last object leaves, so every track ends
SUPERVISION_PYTHON = "/tmp/sv-venv/bin/python"
LINE_VARIANTS = ("LineZone corners, threshold 1 (its defaults)", "LineZone bottom centre, threshold 1",
                 "LineZone bottom centre, threshold 3")


# ---------------------------------------------------------------- the scenes
@dataclass
class Shape:
    """One object: its centre's waypoints (time, x, y), kind, circumradius, drawing
    layer (higher is in front) and a jitter (amplitude px, period s): a sinusoid across
    the line (along x) while it waits, added to where it is drawn but not to its
    intended path."""

    kind: str
    waypoints: List[Tuple[float, float, float]]
    radius: float = 30.0
    layer: int = 0
    jitter: Optional[Tuple[float, float]] = None
    aspect: float = 0.8

    def centre(self, time: float, jittered: bool = True) -> Optional[np.ndarray]:
        times = [w[0] for w in self.waypoints]
        if time < times[0] - 1e-9 or time > times[-1] + 1e-9:
            return None
        x = float(np.interp(time, times, [w[1] for w in self.waypoints]))
        y = float(np.interp(time, times, [w[2] for w in self.waypoints]))
        if jittered and self.jitter is not None:
            amplitude, period = self.jitter
            for (t0, x0, y0), (t1, x1, y1) in zip(self.waypoints, self.waypoints[1:]):
                if (x0, y0) == (x1, y1) and t0 <= time <= t1:
                    x += amplitude * np.sin(2 * np.pi * (time - t0) / period)
        return np.array([x, y])

    def polygon(self, time: float, jittered: bool = True) -> Optional[np.ndarray]:
        from edgecnn.core.scenes import shape_polygon

        centre = self.centre(time, jittered)
        if centre is None:
            return None
        aspect = self.aspect if self.kind == "rectangle" else 1.0
        return shape_polygon(self.kind, tuple(centre), self.radius, 0.0, aspect)

    def box(self, time: float, jittered: bool = True) -> Optional[np.ndarray]:
        points = self.polygon(time, jittered)
        return None if points is None else np.concatenate([points.min(axis=0), points.max(axis=0)])

    def anchor(self, time: float, jittered: bool = False) -> Optional[np.ndarray]:
        box = self.box(time, jittered)
        return None if box is None else np.array([(box[0] + box[2]) / 2, box[3]])


@dataclass
class Scenario:
    name: str
    shapes: List[Shape]
    seed: int = 0

    @property
    def seconds(self) -> float:
        return max(s.waypoints[-1][0] for s in self.shapes) + TAIL


def path(points, speed: float = 80.0, start: float = 0.0) -> List[Tuple[float, float, float]]:
    """Waypoints through `points` at `speed` px/s; a point (x, y, seconds) waits there."""
    waypoints, time, previous = [], start, None
    for point in points:
        x, y = float(point[0]), float(point[1])
        if previous is not None:
            time += float(np.hypot(x - previous[0], y - previous[1])) / speed
        waypoints.append((time, x, y))
        if len(point) > 2:
            time += float(point[2])
            waypoints.append((time, x, y))
        previous = (x, y)
    return waypoints


def scenarios() -> List[Scenario]:
    """The cases. A centre y of 100-170 puts a shape's bottom (the anchor) on the
    line's span; y = 285 puts it in the zone's band, below the line's end."""
    line_x = GATE[0][0]
    # the anchor of a circle of radius 30 is 30 px below its centre: on the line at x = 256
    return [
        Scenario("crosses each way (circle right, triangle left)", [
            Shape("circle", path([(40, 110), (470, 110)], start=0.3)),
            Shape("triangle", path([(470, 150), (40, 150)], start=3.0), radius=36)], seed=1),
        Scenario("stops on the line 3 s, goes on", [
            Shape("rectangle", path([(40, 120), (line_x, 120, 3.0), (470, 120)], start=0.3), radius=32)], seed=2),
        Scenario("stops on the line 3 s, turns back", [
            Shape("circle", path([(40, 120), (line_x, 120, 3.0), (40, 120)], start=0.3))], seed=3),
        Scenario("jitters across the line (+-3 px, 4 s), goes on", [
            Shape("circle", path([(40, 130), (line_x, 130, 4.0), (470, 130)], start=0.3),
                  jitter=(3.0, 0.8))], seed=4),
        Scenario("jitters across the line (+-8 px, 4 s), goes on", [
            Shape("circle", path([(40, 130), (line_x, 130, 4.0), (470, 130)], start=0.3),
                  jitter=(8.0, 0.8))], seed=10),
        Scenario("jitters across the line (+-8 px, 4 s), turns back", [
            Shape("triangle", path([(470, 130), (line_x, 130, 4.0), (470, 130)], start=0.3), radius=36,
                  jitter=(8.0, 0.8))], seed=5),
        Scenario("crosses hidden behind another crossing the other way", [
            Shape("circle", path([(40, 140), (470, 140)], speed=70, start=0.3), radius=26),
            Shape("rectangle", path([(472, 140), (42, 140)], speed=70, start=0.3), radius=60, layer=1,
                  aspect=0.9)], seed=6),
        Scenario("leaves the zone and comes back", [
            Shape("triangle", path([(60, 285), (400, 285, 1.5), (200, 285, 1.5), (420, 290, 2.5), (60, 290)],
                                   speed=100, start=0.3), radius=36)], seed=7),
        Scenario("stays in the zone 5 s (dwell)", [
            Shape("circle", path([(60, 280), (400, 280, 5.0), (60, 280)], speed=100, start=0.3))], seed=8),
        Scenario("five at once: three cross, two visit the zone", [
            Shape("circle", path([(40, 80), (470, 80)], speed=90, start=0.3), radius=26),
            Shape("triangle", path([(470, 140), (40, 140)], speed=70, start=0.8), radius=32),
            Shape("rectangle", path([(40, 185), (470, 185)], speed=60, start=1.5), radius=30),
            Shape("circle", path([(60, 295), (380, 295, 1.0), (60, 295)], speed=110, start=0.3), radius=28),
            Shape("rectangle", path([(500, 300), (430, 300, 2.0), (500, 300)], speed=60, start=2.5), radius=24,
                  aspect=0.7)], seed=9),
    ]


def render(scenario: Scenario, video: Path) -> None:
    from edgecnn.core.scenes import random_colour, textured_background

    rng = np.random.default_rng([scenario.seed, 11])
    background, mean = textured_background(rng, (HEIGHT, WIDTH))
    colours = [tuple(float(c) for c in random_colour(rng, mean, 120.0)) for _ in scenario.shapes]
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    order = sorted(range(len(scenario.shapes)), key=lambda i: scenario.shapes[i].layer)
    for index in range(int(round(scenario.seconds * FPS))):
        image = background.copy()
        for i in order:
            points = scenario.shapes[i].polygon(index * PERIOD)
            if points is not None:
                cv2.fillPoly(image, [np.round(points * 16).astype(np.int32)], colours[i], lineType=cv2.LINE_8, shift=4)
        writer.write(image)
    writer.release()


# ---------------------------------------------------------------- ground truth
def true_crossings(shape: Shape) -> Tuple[int, int]:
    """(in, out): side changes of the intended anchor path where it meets the segment."""
    (x, top), (_, bottom) = GATE
    first, last = shape.waypoints[0][0], shape.waypoints[-1][0]
    side, crossings = 0, [0, 0]
    for moment in np.arange(first, last + 1e-9, PERIOD / SUBSTEPS):
        ax, ay = shape.anchor(moment)
        now = int(np.sign(round(ax - x, 6)))
        if now and side and now != side and top <= ay <= bottom:
            crossings[0 if now > 0 else 1] += 1
        side = now or side
    return crossings[0], crossings[1]


def true_visits(shape: Shape) -> List[Tuple[float, float]]:
    polygon = np.array(BAY, np.float32)
    first, last = shape.waypoints[0][0], shape.waypoints[-1][0]
    visits, entered = [], None
    for moment in np.arange(first, last + 1e-9, PERIOD / SUBSTEPS):
        ax, ay = shape.anchor(moment)
        inside = cv2.pointPolygonTest(polygon, (float(ax), float(ay)), False) > 0
        if inside and entered is None:
            entered = moment
        elif not inside and entered is not None:
            visits.append((entered, moment))
            entered = None
    if entered is not None:
        visits.append((entered, last))
    return visits


# ---------------------------------------------------------------- what each counter saw
@dataclass
class Counts:
    line_in: int = 0
    line_out: int = 0
    visits: List[List[Optional[float]]] = field(default_factory=list)  # [entered (s from video start), seconds]
    dwells: List[Tuple[float, float]] = field(default_factory=list)  # (entered, time) of each dwell event

    @property
    def enters(self) -> int:
        return len(self.visits)

    @property
    def exits(self) -> int:
        return sum(visit[1] is not None for visit in self.visits)


def run_edgecnn(video: Path, records: Path, margin: float) -> float:
    """The command users run; returns its wall seconds."""
    zone = ",".join(f"{x:g},{y:g}" for x, y in BAY)
    command = [str(ROOT / ".venv/bin/edgecnn"), "run", "--source", str(video), "--track",
               "--zone", f"bay={zone}:min_time={MIN_TIME:g},dwell={DWELL:g},dwell_repeat=1",
               "--line", "gate=" + ",".join(f"{v:g}" for point in GATE for v in point) + f":margin={margin:g}",
               "--json", str(records)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"edgecnn run failed ({result.returncode}): {result.stderr.strip()}")
    return time.perf_counter() - started


def read_records(records: Path) -> List[dict]:
    return [json.loads(line) for line in records.read_text().splitlines() if line.strip()]


def counts_from_records(items: Sequence[dict]) -> Counts:
    start = min(r["capture_time"] for r in items if r["type"] == "frame")
    counts, open_visit = Counts(), {}
    for record in items:
        if record["type"] != "event":
            continue
        kind = record["event"]
        if kind == "cross":
            counts.line_in += record["direction"] == "in"
            counts.line_out += record["direction"] == "out"
        elif kind == "enter":
            open_visit[record["track_id"]] = len(counts.visits)
            counts.visits.append([record["entered_at"] - start, None])
        elif kind == "exit":
            counts.visits[open_visit.pop(record["track_id"])][1] = record["seconds"]
        elif kind == "dwell":
            counts.dwells.append((record["entered_at"] - start, record["capture_time"] - start))
    return counts


def engine_on_truth(scenario: Scenario) -> Counts:
    """The same engine fed the true boxes with true ids: the count no detector or tracker
    error can spoil (a shape hidden behind a later layer is left out while most of it is)."""
    sys.path.insert(0, str(ROOT))
    from edgecnn.runtime.analytics import Analytics, Line, Zone

    analytics = Analytics([Zone("bay", BAY, min_time=MIN_TIME, dwell=DWELL, dwell_repeat=True)],
                          [Line("gate", *GATE, margin=MARGIN)], frame_size=(WIDTH, HEIGHT))
    counts, open_visit = Counts(), {}
    frames = int(round(scenario.seconds * FPS))
    last_seen: Dict[int, int] = {}
    for index in range(frames):
        time_now = index * PERIOD
        boxes, ids = [], []
        for number, shape in enumerate(scenario.shapes):
            box = shape.box(time_now)
            if box is not None and visible_share(scenario, number, time_now) >= 0.5:
                boxes.append(box), ids.append(number + 1)
                last_seen[number + 1] = index
        ended = [i for i, seen in last_seen.items() if i not in ids and index - seen == int(FPS)]
        frame = analytics.update(np.array(boxes).reshape(-1, 4), np.zeros(len(ids), np.int64), np.array(ids),
                                 ["shape"], time_now, index, ended=ended)
        for event in frame.events:
            if event.event == "cross":
                counts.line_in += event.direction == "in"
                counts.line_out += event.direction == "out"
            elif event.event == "enter":
                open_visit[event.track_id] = len(counts.visits)
                counts.visits.append([event.entered_at, None])
            elif event.event == "exit":
                counts.visits[open_visit.pop(event.track_id)][1] = event.seconds
            elif event.event == "dwell":
                counts.dwells.append((event.entered_at, event.time))
    return counts


def visible_share(scenario: Scenario, number: int, time_now: float) -> float:
    """How much of shape `number` no shape of a higher layer covers at this time."""
    def mask(shape: Shape) -> np.ndarray:
        image = np.zeros((HEIGHT, WIDTH), np.uint8)
        points = shape.polygon(time_now)
        if points is not None:
            cv2.fillPoly(image, [np.round(points * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        return image.astype(bool)

    shape = scenario.shapes[number]
    own = mask(shape)
    above = [mask(other) for other in scenario.shapes if other.layer > shape.layer]
    if not above or not own.any():
        return 1.0
    covered = np.logical_or.reduce(above)
    return float((own & ~covered).sum() / own.sum())


def ids_per_object(scenario: Scenario, items: Sequence[dict]) -> List[int]:
    """Per true object, the distinct confirmed track ids whose boxes matched it (IoU >= 0.3)."""
    ids: List[set] = [set() for _ in scenario.shapes]
    for record in items:
        if record["type"] != "frame":
            continue
        index = record["frame"]
        truths = [shape.box(index * PERIOD) for shape in scenario.shapes]
        for detection in record.get("detections", []):
            if detection.get("state") != "tracked":
                continue
            scores = [iou(detection["box"], box) if box is not None else 0.0 for box in truths]
            best = int(np.argmax(scores))
            if scores[best] >= 0.3:
                ids[best].add(detection["track_id"])
    return [len(found) for found in ids]


def iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# ---------------------------------------------------------------- supervision (its own venv)
def supervision_counts(records_path: str) -> dict:
    """Run inside a venv with supervision: LineZone variants and PolygonZone on the
    confirmed tracked boxes of the records; prints what each counted."""
    import supervision as sv

    items = read_records(Path(records_path))
    frames = [r for r in items if r["type"] == "frame"]
    start = min(r["capture_time"] for r in frames)
    ended_at: Dict[int, List[int]] = {}
    for record in items:
        if record["type"] == "event" and record["event"] == "end":
            ended_at.setdefault(record["frame"], []).append(record["track_id"])
    corners = (sv.Position.TOP_LEFT, sv.Position.TOP_RIGHT, sv.Position.BOTTOM_LEFT, sv.Position.BOTTOM_RIGHT)
    bottom = (sv.Position.BOTTOM_CENTER,)
    lines = [sv.LineZone(sv.Point(*GATE[0]), sv.Point(*GATE[1]), triggering_anchors=anchors,
                         minimum_crossing_threshold=threshold)
             for anchors, threshold in ((corners, 1), (bottom, 1), (bottom, 3))]
    zone = sv.PolygonZone(np.array(BAY, np.int64), triggering_anchors=bottom)
    visits: List[List[Optional[float]]] = []
    inside: Dict[int, bool] = {}
    open_visit: Dict[int, int] = {}
    last_time: Dict[int, float] = {}
    for record in frames:
        now = record["capture_time"] - start
        tracked = [d for d in record.get("detections", []) if d.get("state") == "tracked"]
        detections = sv.Detections(xyxy=np.array([d["box"] for d in tracked], np.float32).reshape(-1, 4),
                                   class_id=np.array([d["class_id"] for d in tracked], np.int64),
                                   tracker_id=np.array([d["track_id"] for d in tracked], np.int64))
        for line in lines:
            line.trigger(detections)
        for track_id, seen in zip(detections.tracker_id.tolist(), zone.trigger(detections).tolist()):
            was = inside.get(track_id, False)
            if seen and not was:
                open_visit[track_id] = len(visits)
                visits.append([now, None])
            elif was and not seen:
                visit = visits[open_visit.pop(track_id)]
                visit[1] = now - visit[0]
            inside[track_id] = seen
            last_time[track_id] = now
        for track_id in ended_at.get(record["frame"], []):
            if inside.pop(track_id, False):
                visit = visits[open_visit.pop(track_id)]
                visit[1] = last_time[track_id] - visit[0]  # until it was last seen
    return {"version": sv.__version__, "lines": [(line.in_count, line.out_count) for line in lines], "visits": visits}


# ---------------------------------------------------------------- comparison
@dataclass
class Outcome:
    """One scenario: its truth, and what each counter made of it (column name -> Counts)."""

    scenario: Scenario
    truth_line: Tuple[int, int]
    truth_visits: List[Tuple[float, float]]
    counted: Dict[str, Counts]
    ids: List[int]
    frames: int


def visit_errors(visits: Sequence[Sequence[Optional[float]]], truth: Sequence[Tuple[float, float]]
                 ) -> Optional[List[float]]:
    """|measured - true| time inside per visit, visits paired in order of entry; None
    where the numbers of visits differ (no pairing to make); a visit that never
    exited counts as infinitely wrong."""
    measured = sorted(visits, key=lambda v: v[0])
    if len(measured) != len(truth):
        return None
    return [abs(seconds - (b - a)) if seconds is not None else float("inf")
            for (a, b), (_, seconds) in zip(sorted(truth), measured)]


def dwell_lateness(counts: Counts, truth: Sequence[Tuple[float, float]]) -> Tuple[int, int, List[float]]:
    """Dwell events expected (one per full DWELL inside each true visit), emitted, and
    each emitted one's time less its due time (true entry + k * DWELL), visits paired in
    order of entry."""
    expected = sum(int((b - a + 1e-9) // DWELL) for a, b in truth)
    by_visit: Dict[float, List[float]] = {}
    for entered, at in counts.dwells:
        by_visit.setdefault(round(entered, 4), []).append(at)
    late: List[float] = []
    for (a, _), (_, times) in zip(sorted(truth), sorted(by_visit.items())):
        late += [at - (a + DWELL * (k + 1)) for k, at in enumerate(sorted(times))]
    return expected, len(counts.dwells), late


def cpu_description() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features"):
                flags.update(value.split())
    except OSError:
        pass
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "asimd", "asimddp")
    return f"{model}; {os.cpu_count()} cores; flags: {' '.join(f for f in wanted if f in flags) or 'none listed'}"


def mark(ok: bool) -> str:
    return "" if ok else " ✗"


def report(outcomes: Sequence[Outcome], columns: Sequence[str], with_dwell: Sequence[str]) -> str:
    """The per-scenario table (line in/out, zone enter/exit per column) and the totals."""
    header = ["scenario", "frames", "track ids per object", "truth", *columns]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    exact = {column: [0, 0] for column in columns}
    for o in outcomes:
        true_n = len(o.truth_visits)
        cells = [o.scenario.name, str(o.frames), " ".join(str(n) for n in o.ids),
                 f"{o.truth_line[0]}/{o.truth_line[1]}, {true_n}/{true_n}"]
        for column in columns:
            counts = o.counted[column]
            line_ok = (counts.line_in, counts.line_out) == o.truth_line
            zone_ok = counts.enters == true_n and counts.exits == true_n
            exact[column][0] += line_ok
            exact[column][1] += zone_ok
            cells.append(f"{counts.line_in}/{counts.line_out}{mark(line_ok)}, "
                         f"{counts.enters}/{counts.exits}{mark(zone_ok)}")
        lines.append("| " + " | ".join(cells) + " |")
    total = len(outcomes)
    lines += ["", "| | " + " | ".join(columns) + " |", "|---" * (1 + len(columns)) + "|"]
    lines.append("| scenarios with exact line in/out | " + " | ".join(f"{exact[c][0]}/{total}" for c in columns) + " |")
    lines.append("| scenarios with exact zone enter/exit | " + " | ".join(f"{exact[c][1]}/{total}" for c in columns)
                 + " |")
    cells = []
    for column in columns:
        errors, unpaired = [], 0
        for o in outcomes:
            found = visit_errors(o.counted[column].visits, o.truth_visits)
            if found is None:
                unpaired += len(o.truth_visits)
            else:
                errors += found
        within = sum(e <= PERIOD + 1e-6 for e in errors)
        cell = f"{within}/{len(errors)} within one frame, max {max(errors, default=0) * 1000:.1f} ms"
        cells.append(cell + (f"; {unpaired} not paired (counts differ)" if unpaired else ""))
    lines.append(f"| time inside per visit vs truth (frame period {PERIOD * 1000:.1f} ms) | " + " | ".join(cells)
                 + " |")
    cells = []
    for column in columns:
        if column not in with_dwell:
            cells.append("—")
            continue
        expected = emitted = 0
        late: List[float] = []
        for o in outcomes:
            e, m, lateness = dwell_lateness(o.counted[column], o.truth_visits)
            expected, emitted, late = expected + e, emitted + m, late + lateness
        within = sum(abs(v) <= PERIOD + 1e-6 for v in late)
        cells.append(f"{expected} / {emitted}; {within}/{len(late)} within one frame, "
                     f"max {max(map(abs, late), default=0) * 1000:.1f} ms")
    lines.append(f"| dwell events ({DWELL:g} s, repeated): expected / emitted; time from due | " + " | ".join(cells)
                 + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="write the videos and records here (default: a temporary folder)")
    parser.add_argument("--supervision", default=SUPERVISION_PYTHON,
                        help=f"a Python with supervision installed ('' to leave it out; default {SUPERVISION_PYTHON})")
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    parser.add_argument("--count-with-supervision", metavar="RECORDS", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.count_with_supervision:
        print(json.dumps(supervision_counts(arguments.count_with_supervision)))
        return
    use_sv = bool(arguments.supervision) and Path(arguments.supervision).exists()
    work = arguments.keep or Path(tempfile.mkdtemp(prefix="zones-pipeline-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{cpu_description()}; load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    default_run = f"edgecnn run (default band: {MARGIN:g} px or 0.15 of the box)"
    wide_run = f"edgecnn run (margin {WIDE_MARGIN:g} px)"
    columns = [default_run, wide_run, f"engine on true boxes (default band)"]
    outcomes, sv_version = [], None
    for number, scenario in enumerate(s for s in scenarios() if not arguments.only or arguments.only in s.name):
        video = work / f"scene{number}.avi"
        render(scenario, video)
        counted, ids, frames = {}, [], 0
        for column, margin in ((default_run, MARGIN), (wide_run, WIDE_MARGIN)):
            records = work / f"scene{number}-margin{margin:g}.jsonl"
            seconds = run_edgecnn(video, records, margin)
            items = read_records(records)
            counted[column] = counts_from_records(items)
            print(f"{scenario.name}, margin {margin:g}: {len(items)} records in {seconds:.1f} s", file=sys.stderr)
            if margin == MARGIN:
                ids, frames = ids_per_object(scenario, items), sum(r["type"] == "frame" for r in items)
                if use_sv:
                    answer = subprocess.run([arguments.supervision, __file__, "--count-with-supervision",
                                             str(records)], capture_output=True, text=True, check=True)
                    found = json.loads(answer.stdout)
                    sv_version = found["version"]
                    for name, (line_in, line_out) in zip(LINE_VARIANTS, found["lines"]):
                        counted[f"supervision: {name}"] = Counts(line_in, line_out, found["visits"])
        counted[columns[2]] = engine_on_truth(scenario)
        truth = [true_crossings(shape) for shape in scenario.shapes]
        outcomes.append(Outcome(scenario, (sum(t[0] for t in truth), sum(t[1] for t in truth)),
                                sorted(v for shape in scenario.shapes for v in true_visits(shape)), counted, ids,
                                frames))
    if use_sv:
        columns += [f"supervision: {name}" for name in LINE_VARIANTS]
    print(f"supervision {sv_version}" if sv_version else "supervision: not run")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print(report(outcomes, columns, with_dwell=columns[:3]))


if __name__ == "__main__":
    main()
