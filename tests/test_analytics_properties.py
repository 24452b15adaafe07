"""Properties of the analytics engine (edgecnn.runtime.analytics) over generated tracks,
with hypothesis: k visits to a zone make exactly k enters and k exits with their exact
durations, jitter inside a line's margin never adds a crossing, dwell events come
within one frame period, and on random streams (tracks wandering, missing, ending,
changing label, untracked detections) counts never go negative and every track's
zone events alternate. The engine is torch-free; these need hypothesis (the `test`
extra), which the device's runtime venv lacks, so they are not marked runtime."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgecnn.runtime.analytics import Analytics, Line, Zone

LABELS = ["person", "car"]
FRAME = (640, 480)
SQUARE = [(100, 100), (300, 100), (300, 300), (100, 300)]
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def box_at(x, y):
    return [x - 10, y - 40, x + 10, y]


def frames_needed(seconds, period):
    """Frames a stay must last for its first and last frame to be `seconds` apart."""
    return math.ceil(seconds / period - 1e-9) + 1


@PROPERTY
@given(visits=st.integers(1, 5), min_time=st.sampled_from([0.0, 0.1, 0.25, 0.5]), period=st.floats(0.02, 0.2),
       extra=st.lists(st.integers(0, 8), min_size=10, max_size=10), gaps=st.lists(st.integers(0, 4), min_size=10,
                                                                                    max_size=10),
       seed=st.integers(0, 2 ** 16))
def test_k_visits_make_exactly_k_enters_and_exits_with_their_durations(visits, min_time, period, extra, gaps, seed):
    rng = np.random.default_rng(seed)
    analytics = Analytics([Zone("yard", SQUARE, min_time=min_time)], frame_size=FRAME)
    needed = frames_needed(min_time, period)
    stays = [needed + extra[i % len(extra)] for i in range(2 * visits + 1)]  # outside, inside, outside ...
    index, events, truth, occupancy = 0, [], [], []
    for number, length in enumerate(stays):
        inside = number % 2 == 1
        for frame in range(length):
            if frame == length // 2:  # an occlusion in the middle of the stay: decides nothing
                for _ in range(gaps[number % len(gaps)]):
                    out = analytics.update(np.zeros((0, 4)), [], [], LABELS, index * period, index)
                    events += out.events
                    occupancy.append(out.occupancy["yard"].get("person", 0))
                    index += 1
            if frame == 0:
                truth.append((inside, index * period))  # the stay's first frame seen
            x, y = (rng.uniform(110, 290, 2) if inside else (rng.uniform(320, 600), rng.uniform(0, 480)))
            out = analytics.update([box_at(x, y)], [0], [1], LABELS, index * period, index)
            events += out.events
            occupancy.append(out.occupancy["yard"].get("person", 0))
            index += 1
    assert [e.event for e in events] == ["enter", "exit"] * visits
    entries = [time for inside, time in truth if inside]
    leavings = [time for inside, time in truth[1:] if not inside]
    assert [e.entered_at for e in events[::2]] == pytest.approx(entries)
    assert [e.seconds for e in events[1::2]] == pytest.approx([b - a for a, b in zip(entries, leavings)])
    assert min(occupancy) >= 0 and max(occupancy) <= 1


@PROPERTY
@given(sides=st.lists(st.sampled_from([-1, 1]), min_size=2, max_size=8), margin=st.floats(1.0, 10.0),
       band_frames=st.lists(st.integers(0, 8), min_size=8, max_size=8), seed=st.integers(0, 2 ** 16),
       in_side=st.sampled_from(["left", "right"]))
def test_jitter_inside_the_margin_never_adds_crossings(sides, margin, band_frames, seed, in_side):
    rng = np.random.default_rng(seed)
    start = rng.uniform([100, 100], [540, 380])
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    length = rng.uniform(60, 200)
    end = np.clip(start + length * direction, 0, FRAME)
    direction = (end - start) / np.linalg.norm(end - start)
    left = np.array([direction[1], -direction[0]])  # y grows downwards
    # the pixel band alone (margin_fraction=0); the band that grows with the box: test_analytics
    analytics = Analytics(lines=[Line("gate", tuple(start), tuple(end), margin=margin, margin_fraction=0.0,
                                      in_side=in_side)],
                          frame_size=FRAME)
    segment = np.linalg.norm(end - start)
    positions = []
    for number, side in enumerate(sides):
        for _ in range(int(rng.integers(1, 4))):  # clearly on the side
            positions.append((side * rng.uniform(margin + 0.5, 60), rng.uniform(0.1, 0.9)))
        if number + 1 < len(sides):
            for _ in range(band_frames[number]):  # on the line, within the margin either way
                positions.append((rng.uniform(-0.99, 0.99) * margin, rng.uniform(0.1, 0.9)))
    events = []
    for index, (distance, along) in enumerate(positions):
        x, y = start + along * segment * direction + distance * left
        events += analytics.update([box_at(x, y)], [0], [7], LABELS, index / 30, index).events
    into = "in" if in_side == "left" else "out"
    expected = [into if after == 1 else ("out" if into == "in" else "in")
                for before, after in zip(sides, sides[1:]) if before != after]
    assert [e.direction for e in events] == expected


@PROPERTY
@given(period=st.floats(0.02, 0.5), factor=st.floats(1.0, 20.0), frames=st.integers(1, 200))
def test_dwell_events_come_within_one_frame_period(period, factor, frames):
    dwell = period * factor  # (a dwell shorter than a frame period gets one event per frame, not one per period)
    analytics = Analytics([Zone("yard", SQUARE, dwell=dwell, dwell_repeat=True)], frame_size=FRAME)
    dwells = []
    for index in range(frames):
        dwells += [e.seconds for e in analytics.update([box_at(200, 200)], [0], [1], LABELS, index * period,
                                                       index).events if e.event == "dwell"]
    inside = (frames - 1) * period
    assert len(dwells) == sum(1 for k in range(1, frames + 1) if k * dwell <= inside + 1e-9)
    for k, seconds in enumerate(dwells, start=1):
        assert k * dwell - 1e-9 <= seconds < k * dwell + period + 1e-9


@st.composite
def streams(draw):
    """Frames of (track id, x, y, class) for a few tracks wandering at random, each missing
    on some frames and possibly ended, plus untracked detections; and the ended ids."""
    tracks, length = draw(st.integers(1, 5)), draw(st.integers(5, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    position = rng.uniform(0, 400, (tracks, 2))
    ends = {t: int(rng.integers(length // 2, length * 2)) for t in range(tracks)}
    frames = []
    for index in range(length):
        position += rng.normal(0, 25, position.shape)
        objects = [(t + 1, *position[t], int(rng.random() < 0.2)) for t in range(tracks)
                   if index < ends[t] and rng.random() > 0.2]
        objects += [(-1, *rng.uniform(0, 400, 2), 0) for _ in range(int(rng.integers(0, 3)))]
        ended = [t + 1 for t in range(tracks) if ends[t] == index]
        frames.append((objects, ended))
    return frames


@PROPERTY
@given(frames=streams(), min_time=st.sampled_from([0.0, 0.1, 0.3]), period=st.sampled_from([0.033, 0.1, 0.25]))
def test_counts_never_go_negative_and_zone_events_alternate(frames, min_time, period):
    zones = [Zone("yard", SQUARE, min_time=min_time, dwell=0.5, dwell_repeat=True),
             Zone("people", [(0, 0), (250, 0), (250, 480), (0, 480)], labels=["person"], min_time=min_time)]
    analytics = Analytics(zones, [Line("gate", (200, 0), (200, 480))], frame_size=FRAME, track_timeout=1.0)
    last = {}
    previous_counts = 0
    for index, (objects, ended) in enumerate(frames):
        boxes = np.array([box_at(x, y) for _, x, y, _ in objects]).reshape(-1, 4)
        out = analytics.update(boxes, [o[3] for o in objects], [o[0] for o in objects], LABELS, index * period,
                               index, ended=ended)
        for event in out.events:
            if event.event == "cross":
                continue
            key = (event.zone, event.track_id)
            expected = ("enter",) if last.get(key, "exit") == "exit" else ("dwell", "exit")
            assert event.event in expected, (key, event.event, last.get(key))
            assert event.seconds >= -1e-9
            last[key] = event.event
        open_tracks = {zone.name: sum(1 for (name, _), kind in last.items() if name == zone.name and kind != "exit")
                       for zone in zones}
        untracked = sum(1 for o in objects if o[0] < 0)
        for zone in zones:
            counts = out.occupancy[zone.name]
            assert all(count >= 0 for count in counts.values())
            assert open_tracks[zone.name] <= sum(counts.values()) <= open_tracks[zone.name] + untracked
        line_counts = sum(sum(side.values()) for side in out.line_counts["gate"].values())
        assert line_counts >= previous_counts
        previous_counts = line_counts
