"""Zones and lines on tracked boxes (edgecnn.runtime.analytics): the exact events of
crafted tracks (entering, leaving, dwelling, jitter at an edge, occlusion, a track
that ends or times out, re-entry, untracked detections, labels), line crossings in
both directions with the jitter guard and the segment's extent, the results' dicts,
and the one-line errors for bad zones and lines. Property-based tests:
tests/test_analytics_properties.py."""
import json

import numpy as np
import pytest

from edgecnn.core.errors import UserError
from edgecnn.runtime.analytics import ANCHORS, Analytics, Line, Zone, parse_points
from edgecnn.runtime.tracking import TrackEvent
from edgecnn.tasks.detect.result import Detections

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

LABELS = ["person", "car"]
FRAME = (640, 480)
SQUARE = [(100, 100), (300, 100), (300, 300), (100, 300)]
GATE = ((200, 100), (200, 300))  # drawn top to bottom: its left side is the image's right-hand side


def box_at(x, y, width=20, height=40):
    """A box whose bottom-centre (the default anchor) is (x, y)."""
    return [x - width / 2, y - height, x + width / 2, y]


class Feed:
    """Feeds frames of (track_id, x, y[, class_id]) at a fixed period, keeping every event."""

    def __init__(self, zones=(), lines=(), period=0.1, box=(20, 40), **options):
        self.analytics = Analytics(zones, lines, **options)
        self.box = box  # every object's width and height
        self.period, self.index, self.events, self.frames = period, 0, [], []

    def frame(self, *objects, ended=()):
        boxes = [box_at(o[1], o[2], *self.box) for o in objects]
        classes = [o[3] if len(o) > 3 else 0 for o in objects]
        out = self.analytics.update(np.array(boxes).reshape(-1, 4), classes, [o[0] for o in objects], LABELS,
                                    self.index * self.period, self.index, frame_size=FRAME, ended=ended)
        self.index += 1
        self.events.extend(out.events)
        self.frames.append(out)
        return out

    def walk(self, track_id, points, class_id=0):
        for x, y in points:
            self.frame((track_id, x, y, class_id))

    def zone_events(self):
        return [(e.event, e.zone, e.track_id, e.frame_index, round(e.entered_at, 6), round(e.seconds, 6),
                 e.track_ended) for e in self.events if e.event != "cross"]

    def crossings(self):
        return [(e.line, e.direction, e.track_id, e.label, e.frame_index) for e in self.events if e.event == "cross"]


def assert_one_line_user_error(make, *phrases):
    with pytest.raises(UserError) as error:
        make()
    message = str(error.value)
    assert "\n" not in message and message
    for phrase in phrases:
        assert phrase in message, message


# ---------------------------------------------------------------- zones
def test_a_track_walking_through_a_zone_enters_and_exits_once():
    feed = Feed([Zone("yard", SQUARE)])
    feed.walk(1, [(50 + 40 * f, 200) for f in range(8)])  # x = 50, 90, 130 ... 290 inside, 330 out
    assert feed.zone_events() == [("enter", "yard", 1, 2, 0.2, 0.0, False),
                                  ("exit", "yard", 1, 7, 0.2, 0.5, False)]
    assert [f.occupancy["yard"] for f in feed.frames] == [{}, {}] + [{"person": 1}] * 5 + [{"person": 0}]
    assert [f.changed_zones for f in feed.frames] == [("yard",), (), ("yard",), (), (), (), (), ("yard",)]


def test_min_time_ignores_jitter_over_the_edge_and_back_dates_the_times():
    feed = Feed([Zone("yard", SQUARE, min_time=0.3)])
    feed.walk(1, [(110 if f % 2 == 0 else 90, 200) for f in range(8)])  # in, out, in, out ... for 0.8 s
    feed.walk(1, [(150, 200)] * 7)  # frames 8-14 inside: entered at 0.8, counted at frame 11
    feed.walk(1, [(90, 200), (90, 200), (150, 200)])  # out for two frames only: still inside
    feed.walk(1, [(90, 200)] * 4)  # out from frame 18 (1.8 s): exits at frame 21
    assert feed.zone_events() == [("enter", "yard", 1, 11, 0.8, 0.3, False),
                                  ("exit", "yard", 1, 21, 0.8, 1.0, False)]


@pytest.mark.parametrize("repeat, expected", [(True, [(10, 1.0), (20, 2.0), (30, 3.0)]), (False, [(10, 1.0)])])
def test_dwell_events_after_dwell_seconds_and_optionally_every_dwell_seconds(repeat, expected):
    feed = Feed([Zone("yard", SQUARE, dwell=1.0, dwell_repeat=repeat)])
    feed.walk(1, [(150, 200)] * 36)  # appears inside at 0 s: enters then
    dwells = [(e.frame_index, round(e.seconds, 6)) for e in feed.events if e.event == "dwell"]
    assert dwells == expected
    assert feed.zone_events()[0] == ("enter", "yard", 1, 0, 0.0, 0.0, False)


def test_dwell_is_decided_on_frame_times_within_one_frame_period():
    feed = Feed([Zone("yard", SQUARE, dwell=1.0, dwell_repeat=True)], period=0.3)
    feed.walk(1, [(150, 200)] * 11)  # frames at 0, 0.3 ... 3.0 s
    dwells = [(e.frame_index, round(e.time, 6), round(e.seconds, 6)) for e in feed.events if e.event == "dwell"]
    assert dwells == [(4, 1.2, 1.2), (7, 2.1, 2.1), (10, 3.0, 3.0)]


def test_a_missing_track_stays_inside_and_exits_when_the_tracker_ends_it():
    feed = Feed([Zone("yard", SQUARE)])
    feed.walk(1, [(150, 200)] * 5)
    for _ in range(10):  # occluded: not detected, same id afterwards
        feed.frame()
    feed.walk(1, [(160, 200)] * 3)  # frames 15-17
    assert feed.zone_events() == [("enter", "yard", 1, 0, 0.0, 0.0, False)]
    assert all(f.occupancy["yard"] == {"person": 1} for f in feed.frames)
    for _ in range(5):
        feed.frame()
    ended = feed.frame(ended=[1])  # frame 23
    assert feed.zone_events()[1:] == [("exit", "yard", 1, 23, 0.0, 1.7, True)]
    assert ended.occupancy["yard"] == {"person": 0} and ended.changed_zones == ("yard",)


def test_a_track_seen_outside_after_an_occlusion_exits_then():
    feed = Feed([Zone("yard", SQUARE)])
    feed.walk(1, [(150, 200)] * 5)
    for _ in range(5):
        feed.frame()
    feed.walk(1, [(350, 200)])  # frame 10
    assert feed.zone_events() == [("enter", "yard", 1, 0, 0.0, 0.0, False),
                                  ("exit", "yard", 1, 10, 0.0, 1.0, False)]


def test_a_track_not_seen_for_the_timeout_ends():
    feed = Feed([Zone("yard", SQUARE)], track_timeout=1.0)
    feed.walk(1, [(150, 200)] * 3)
    for _ in range(12):
        feed.frame()
    assert feed.zone_events() == [("enter", "yard", 1, 0, 0.0, 0.0, False),
                                  ("exit", "yard", 1, 13, 0.0, 0.2, True)]  # last seen 0.2 s, 1.3 > 0.2 + 1.0


def test_the_ended_track_state_is_dropped_so_its_id_starts_afresh():
    feed = Feed([Zone("yard", SQUARE)])
    feed.walk(1, [(150, 200)] * 2)
    feed.frame(ended=[1])
    feed.walk(1, [(150, 200)])  # a tracker reusing the id: a new track inside
    assert [e[:4] for e in feed.zone_events()] == [("enter", "yard", 1, 0), ("exit", "yard", 1, 2),
                                                    ("enter", "yard", 1, 3)]


def test_re_entering_after_an_exit_counts_again():
    feed = Feed([Zone("yard", SQUARE)])
    feed.walk(1, [(150, 200)] * 3 + [(350, 200)] * 3 + [(150, 200)] * 3 + [(350, 200)])
    assert [e[:4] for e in feed.zone_events()] == [("enter", "yard", 1, 0), ("exit", "yard", 1, 3),
                                                    ("enter", "yard", 1, 6), ("exit", "yard", 1, 9)]


def test_the_anchor_decides_inside():
    # A box whose bottom-centre is inside the square but whose centre is above it
    zones = [Zone("feet", SQUARE), Zone("middle", SQUARE, anchor="center"), Zone("head", SQUARE, anchor="top-left")]
    feed = Feed(zones)
    feed.walk(1, [(150, 115)])  # box 140..160 x 75..115: centre y 95 and top-left above the square
    assert [(e.event, e.zone) for e in feed.events] == [("enter", "feet")]
    feed.walk(1, [(150, 200)])
    assert [(e.event, e.zone) for e in feed.events[1:]] == [("enter", "middle"), ("enter", "head")]


def test_untracked_detections_count_in_occupancy_and_make_no_events():
    feed = Feed([Zone("yard", SQUARE)])
    first = feed.frame((-1, 150, 200))
    second = feed.frame((-1, 150, 200), (-1, 250, 250, 1))
    third = feed.frame((-1, 150, 200), (-1, 250, 250, 1))
    fourth = feed.frame((-1, 350, 200))
    assert feed.events == []
    assert first.occupancy["yard"] == {"person": 1} and first.changed_zones == ("yard",)
    assert second.occupancy["yard"] == {"person": 1, "car": 1} and second.changed_zones == ("yard",)
    assert third.changed_zones == ()
    assert fourth.occupancy["yard"] == {"person": 0, "car": 0} and fourth.changed_zones == ("yard",)


def test_a_zone_counts_only_its_labels():
    feed = Feed([Zone("yard", SQUARE, labels=["person"])])
    feed.frame((1, 150, 200, 1))  # a car
    assert feed.events == [] and feed.frames[-1].occupancy["yard"] == {"person": 0}
    feed.frame((1, 150, 200, 1), (2, 160, 200, 0))
    assert feed.zone_events() == [("enter", "yard", 2, 1, 0.1, 0.0, False)]
    assert feed.frames[-1].occupancy["yard"] == {"person": 1}


def test_a_track_whose_label_changes_inside_moves_between_the_label_counts():
    feed = Feed([Zone("yard", SQUARE)])
    feed.frame((1, 150, 200, 0))
    changed = feed.frame((1, 150, 200, 1))
    assert [e.event for e in feed.events] == ["enter"]
    assert changed.occupancy["yard"] == {"person": 0, "car": 1} and changed.changed_zones == ("yard",)


def test_zones_in_fractions_of_the_frame_resolve_at_the_first_frame():
    half = Zone("left-half", [(0, 0), (0.5, 0), (0.5, 1), (0, 1)], fractions=True)
    analytics = Analytics([half])
    out = analytics.update([box_at(300, 200), box_at(340, 200)], [0, 0], [1, 2], LABELS, 0.0, 0, frame_size=FRAME)
    assert [(e.event, e.track_id) for e in out.events] == [("enter", 1)]
    assert analytics.frame_size == FRAME


def test_many_tracks_at_once_and_their_ends():
    feed = Feed([Zone("yard", SQUARE)], [Line("gate", *GATE)])
    ids = range(1, 151)  # more tracks than the engine's first allocation of rows
    feed.frame(*[(i, 110 + i % 80, 150 + i % 100) for i in ids])
    feed.frame(*[(i, 210 + i % 80, 150 + i % 100) for i in ids])
    assert feed.frames[-1].occupancy["yard"] == {"person": 150}
    assert feed.frames[-1].line_counts["gate"] == {"in": {"person": 150}, "out": {"person": 0}}
    ended = feed.frame(ended=list(ids))
    assert len([e for e in ended.events if e.event == "exit" and e.track_ended]) == 150
    assert ended.occupancy["yard"] == {"person": 0}
    feed.frame((1, 150, 200))
    assert [e.event for e in feed.frames[-1].events] == ["enter"]  # a fresh track under a freed id


# ---------------------------------------------------------------- lines
def test_crossings_in_both_directions_and_the_in_side():
    feed = Feed(lines=[Line("gate", *GATE), Line("gate-reversed", *GATE, in_side="right")])
    feed.walk(1, [(150 + 20 * f, 200) for f in range(6)])  # x 150 ... 250: crosses at frame 3 (x 210)
    feed.walk(1, [(250 - 20 * f, 200) for f in range(6)])  # and back: at frame 9 (x 190)
    assert feed.crossings() == [("gate", "in", 1, "person", 3), ("gate-reversed", "out", 1, "person", 3),
                                ("gate", "out", 1, "person", 9), ("gate-reversed", "in", 1, "person", 9)]
    cross = feed.events[0]
    assert cross.point == (200.0, 200.0) and cross.box == tuple(box_at(210, 200))
    assert feed.frames[-1].line_counts["gate"] == {"in": {"person": 1}, "out": {"person": 1}}


def test_a_horizontal_line_counts_moving_up_as_in_like_supervision():
    feed = Feed(lines=[Line("road", (100, 200), (300, 200))])
    feed.walk(1, [(150, 250 - 20 * f) for f in range(6)])  # upwards: into the left of a left-to-right line
    assert feed.crossings() == [("road", "in", 1, "person", 3)]


def test_jitter_on_the_line_within_the_margin_counts_nothing_and_one_crossing_once():
    feed = Feed(lines=[Line("gate", *GATE, margin=4)])
    jitter = [197, 203, 198, 202, 196.5, 203.5] * 4
    feed.walk(1, [(x, 200) for x in [150, 170, 190] + jitter + [190, 170]])  # back to where it came from
    assert feed.crossings() == []
    feed.walk(2, [(x, 200) for x in [150, 170, 190] + jitter + [210, 230]])  # through, jittering on the way
    assert feed.crossings() == [("gate", "in", 2, "person", 56)]  # track 1 took frames 0-28


def test_the_band_grows_with_the_box_so_a_large_object_rocking_on_the_line_counts_once():
    """A 60-pixel box swinging 8 px either side of an upright line: beyond the 4 px margin,
    within 0.15 of its width (9 px). With the box-relative band off, every swing counts."""
    rocking = [150, 175, 192] + [208, 192] * 5 + [230, 260]
    for fraction, expected in ((0.15, [("gate", "in", 1, "person", 13)]), (0.0, None)):
        feed = Feed(lines=[Line("gate", *GATE, margin_fraction=fraction)], box=(60, 80))
        feed.walk(1, [(x, 200) for x in rocking])
        if expected is None:
            assert [c[1] for c in feed.crossings()] == ["in", "out"] * 5 + ["in"]
        else:
            assert feed.crossings() == expected
    assert_one_line_user_error(lambda: Line("l", *GATE, margin_fraction=1.0), "margin_fraction")


def test_a_track_that_stops_on_the_line_counts_only_when_it_leaves_on_the_other_side():
    feed = Feed(lines=[Line("gate", *GATE)])
    feed.walk(1, [(150, 200), (180, 200)] + [(200, 200)] * 30)
    assert feed.crossings() == []
    feed.walk(1, [(220, 200)])
    assert feed.crossings() == [("gate", "in", 1, "person", 32)]


def test_a_crossing_beside_the_segment_does_not_count_and_changes_the_side():
    feed = Feed(lines=[Line("gate", *GATE)])
    feed.walk(1, [(150 + 20 * f, 350) for f in range(6)])  # below the end of the segment (y 300)
    assert feed.crossings() == []
    feed.walk(1, [(250, 250)] + [(250 - 20 * f, 200) for f in range(6)])  # then through the segment, leftwards
    assert feed.crossings() == [("gate", "out", 1, "person", 10)]


def test_an_occluded_crossing_counts_once_when_the_track_reappears():
    feed = Feed(lines=[Line("gate", *GATE)])
    feed.walk(1, [(150, 200), (170, 200), (190, 200)])
    for _ in range(5):
        feed.frame()
    feed.walk(1, [(260, 240), (280, 240)])
    assert feed.crossings() == [("gate", "in", 1, "person", 8)]
    assert feed.events[0].point == pytest.approx((200.0, 200 + 40 / 7))  # on the path (190, 200) -> (260, 240)


def test_a_track_first_seen_on_the_line_has_no_side_yet():
    feed = Feed(lines=[Line("gate", *GATE)])
    feed.walk(1, [(201, 200), (230, 200), (170, 200)])
    assert feed.crossings() == [("gate", "out", 1, "person", 2)]  # only the second move crosses


def test_cumulative_counts_per_label_and_label_filters():
    feed = Feed(lines=[Line("gate", *GATE), Line("people", *GATE, labels=["person"])])
    feed.walk(1, [(150, 200), (250, 200)], class_id=0)
    feed.walk(2, [(150, 200), (250, 200)], class_id=1)
    feed.walk(1, [(150, 200)], class_id=0)
    counts = feed.frames[-1].line_counts
    assert counts["gate"] == {"in": {"person": 1, "car": 1}, "out": {"person": 1, "car": 0}}
    assert counts["people"] == {"in": {"person": 1}, "out": {"person": 1}}
    assert [f.changed_lines for f in feed.frames] == [("gate", "people"), ("gate", "people"), (), ("gate",),
                                                      ("gate", "people")]
    assert feed.analytics.line_counts == counts


def test_lines_with_different_anchors():
    feed = Feed(lines=[Line("feet", (100, 190), (300, 190)), Line("middle", (100, 190), (300, 190), anchor="center")])
    feed.walk(1, [(150, 180), (150, 200), (150, 220), (150, 240)])  # box centres 160, 180, 200, 220
    assert feed.crossings() == [("feet", "out", 1, "person", 1), ("middle", "out", 1, "person", 2)]


def test_lines_and_zones_on_untracked_detections_make_no_events():
    feed = Feed([Zone("yard", SQUARE)], [Line("gate", *GATE)])
    for x in (150, 190, 210, 250):
        feed.frame((-1, x, 200))
    assert feed.events == [] and feed.frames[-1].line_counts["gate"] == {"in": {}, "out": {}}


# ---------------------------------------------------------------- results
def test_event_and_frame_dicts():
    feed = Feed([Zone("yard", SQUARE)], [Line("gate", *GATE)])
    out = feed.frame((4, 150, 200))
    feed.frame((4, 310, 200, 1))
    enter, cross = feed.events[0].to_dict(), feed.events[-1].to_dict()
    assert enter == {"event": "enter", "zone": "yard", "track_id": 4, "label": "person", "class_id": 0, "frame": 0,
                     "time": 0.0, "box": [140.0, 160.0, 160.0, 200.0], "entered_at": 0.0, "seconds": 0.0,
                     "track_ended": False}
    assert cross == {"event": "cross", "line": "gate", "direction": "in", "track_id": 4, "label": "car",
                     "class_id": 1, "frame": 1, "time": 0.1, "box": [300.0, 160.0, 320.0, 200.0],
                     "point": [200.0, 200.0]}
    record = feed.frames[-1].to_dict()
    json.dumps(record)
    assert record["zones"] == {"yard": {"occupancy": {"person": 0}, "total": 0, "changed": True}}
    assert record["lines"] == {"gate": {"in": {"car": 1}, "out": {"car": 0}, "in_total": 1, "out_total": 0,
                                        "changed": True}}
    assert [e["event"] for e in record["events"]] == ["exit", "cross"]
    assert out.to_dict()["zones"]["yard"]["occupancy"] == {"person": 1}


def test_analyse_reads_a_tracked_detections_result():
    analytics = Analytics([Zone("yard", SQUARE)])

    def result(index, states, events=()):
        boxes = np.array([box_at(150, 200)] * len(states)).reshape(-1, 4)
        detections = Detections(boxes, np.full(len(states), 0.9), np.zeros(len(states), np.int64), LABELS,
                                frame_index=index, capture_time=100.0 + index / 10)
        detections.track_ids = np.arange(1, len(states) + 1)
        detections.track_ages = np.ones(len(states), np.int64)
        detections.track_states = list(states)
        detections.events = list(events)
        return analytics.analyse(detections, frame_size=FRAME)

    tentative = result(0, ["tentative"])
    assert tentative.events == [] and tentative.occupancy["yard"] == {"person": 1}  # counted, as untracked
    confirmed = result(1, ["tracked"])
    assert [(e.event, e.track_id, e.time) for e in confirmed.events] == [("enter", 1, 100.1)]
    end = TrackEvent("end", 1, "person", 0, 0.9, tuple(box_at(150, 200)), 2, 5, 0)
    ended = result(5, [], [end])
    assert [(e.event, e.track_id, e.track_ended, round(e.seconds, 6)) for e in ended.events] == [
        ("exit", 1, True, 0.0)]
    untracked = Detections(np.array([box_at(150, 200)]), np.array([0.9]), np.array([0]), LABELS, frame_index=6,
                           capture_time=100.6)
    assert analytics.analyse(untracked).occupancy["yard"] == {"person": 1}  # a stream without tracking


def test_parse_points():
    assert parse_points("10,20 30.5,40;50,60", "zone 'a'") == ((10.0, 20.0), (30.5, 40.0), (50.0, 60.0))
    assert_one_line_user_error(lambda: parse_points("10,20 30", "zone 'a'"), "zone 'a'", "'30'")


def test_anchors_are_the_documented_points_of_a_box():
    box = np.array([[10.0, 20.0, 30.0, 60.0]])
    from edgecnn.runtime.analytics.geometry import anchor_points

    points = anchor_points(box, np.array(list(ANCHORS.values())))[0]
    assert dict(zip(ANCHORS, map(tuple, points)))["bottom-center"] == (20.0, 60.0)
    assert dict(zip(ANCHORS, map(tuple, points)))["top-right"] == (30.0, 20.0)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("points, phrases", [
    ([(0, 0), (10, 0)], ["zone 'z'", "at least 3 points, got 2"]),
    ([(0, 0), (10, 10), (10, 0), (0, 10)], ["zone 'z'", "crosses itself", "edge 1-2 meets edge 3-4"]),
    ([(0, 0), (10, 0), (10, 10), (5, -5)], ["crosses itself"]),
    ([(0, 0), (5, 5), (10, 10)], ["zero area"]),
    ([(0, 0), (10, 0), (10, 10), (10, 0)], ["repeats point 2"]),
    ([(0, 0), (20, 0), (10, 0), (10, 10)], ["crosses itself"]),  # turns back along its own edge
    ([(0, 0), ("a", 1), (3, 3)], ["pairs of numbers"]),
    ([(0, 0), (1, float("nan")), (3, 3)], ["finite"]),
])
def test_bad_polygons_are_one_line_errors(points, phrases):
    assert_one_line_user_error(lambda: Zone("z", points), *phrases)


def test_bad_zones_lines_and_options_are_one_line_errors():
    assert_one_line_user_error(lambda: Line("l", (5, 5), (5, 5)), "line 'l'", "two different points")
    assert_one_line_user_error(lambda: Zone("z", SQUARE, anchor="middle"), "zone 'z'", "unknown anchor 'middle'",
                               "bottom-center")
    assert_one_line_user_error(lambda: Line("l", *GATE, anchor="feet"), "line 'l'", "unknown anchor 'feet'")
    assert_one_line_user_error(lambda: Line("l", *GATE, in_side="up"), "in_side must be left or right")
    assert_one_line_user_error(lambda: Zone("z", [(0, 0), (1.5, 0), (1, 1)], fractions=True), "within 0..1")
    assert_one_line_user_error(lambda: Zone("z", SQUARE, min_time=-1), "min_time")
    assert_one_line_user_error(lambda: Zone("z", SQUARE, dwell=0), "dwell")
    assert_one_line_user_error(lambda: Zone("z", SQUARE, dwell_repeat=True), "dwell_repeat needs dwell")
    assert_one_line_user_error(lambda: Line("l", *GATE, margin=-1), "margin")
    assert_one_line_user_error(lambda: Zone("z", SQUARE, min_time="soon"), "min_time must be a number, got 'soon'")
    assert Zone("z", SQUARE, labels="person").labels == ("person",)
    assert_one_line_user_error(lambda: Zone("", SQUARE), "a zone needs a name")
    assert_one_line_user_error(lambda: Analytics([Zone("z", SQUARE), Zone("z", SQUARE)]), "two zones are named 'z'")
    assert_one_line_user_error(lambda: Analytics(track_timeout=0), "track_timeout")


def test_points_outside_the_frame_are_one_line_errors():
    wide = Zone("wide", [(0, 0), (700, 0), (700, 100)])
    assert_one_line_user_error(lambda: Analytics([wide], frame_size=FRAME), "zone 'wide'", "(700, 0)",
                               "outside the 640x480 frame")
    low = Line("low", (0, 500), (100, 500))
    analytics = Analytics(lines=[low])
    assert_one_line_user_error(lambda: analytics.update([], [], [], LABELS, 0.0, frame_size=FRAME), "line 'low'",
                               "outside the 640x480 frame")
    assert_one_line_user_error(lambda: Analytics([Zone("z", SQUARE)]).update([], [], [], LABELS, 0.0),
                               "frame size")


def test_unknown_labels_are_one_line_errors_on_the_first_frame():
    analytics = Analytics([Zone("z", SQUARE, labels=["persn"])], frame_size=FRAME)
    assert_one_line_user_error(lambda: analytics.update([], [], [], LABELS, 0.0), "zone 'z'",
                               "unknown label 'persn'", "person, car")
    analytics = Analytics(lines=[Line("l", *GATE, labels=["bus"])], frame_size=FRAME)
    assert_one_line_user_error(lambda: analytics.update([], [], [], LABELS, 0.0), "line 'l'", "unknown label 'bus'")
