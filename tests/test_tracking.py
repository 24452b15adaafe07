"""Tracking: ByteTrack's identities through crossings and occlusions, the track events,
the track fields in every output (Python result, JSON lines, annotated video), and the
one-line errors. Needs edgecnn[track] (scipy), so not marked runtime."""
import json

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from edgecnn.runtime.schema import validate
from edgecnn.runtime.trackers.bytetrack import ByteTrack
from edgecnn.runtime.tracking import Tracking
from edgecnn.tasks.detect.result import Detections


def square(x, y, side=40.0):
    return [x - side / 2, y - side / 2, x + side / 2, y + side / 2]


def frames_of_two_crossing_objects(occluded=range(0, 0)):
    """Object A moves right, B moves left on the same row: they overlap mid-way. A is
    missing in the frames of `occluded`."""
    for t in range(60):
        boxes, scores = [], []
        if t not in occluded:
            boxes.append(square(20 + 4 * t, 100)), scores.append(0.9)
        boxes.append(square(260 - 4 * t, 104)), scores.append(0.85)
        yield t, np.array(boxes), np.array(scores)


def test_identities_survive_a_crossing_and_an_occlusion():
    tracker = ByteTrack(fps=30)
    seen_a, seen_b = set(), set()
    for t, boxes, scores in frames_of_two_crossing_objects(occluded=range(40, 46)):
        ids, ages, states, ended = tracker.update(boxes, scores, np.zeros(len(scores), int))
        assert ended == []
        assert all(state == "tracked" for state in states)
        if t not in range(40, 46):
            seen_a.add(int(ids[0]))
        seen_b.add(int(ids[-1]))
    assert seen_a == {1} and seen_b == {2}  # the same two ids all along, A's kept through six missing frames
    assert ages.tolist() == [60, 60]


def test_a_weak_detection_keeps_a_track_and_cannot_start_one():
    tracker = ByteTrack(fps=30)
    assert tracker.update(np.array([square(50, 50)]), np.array([0.9]), np.array([0]))[0].tolist() == [1]
    ids, _, states, _ = tracker.update(np.array([square(52, 50), square(200, 200)]), np.array([0.3, 0.3]),
                                       np.array([0, 0]))
    assert ids.tolist() == [1, -1] and states == ["tracked", "untracked"]


def test_events_new_update_end_and_tentative_tracks():
    tracking = Tracking(ByteTrack(fps=30, buffer=3))

    def frame(index, boxes, scores, classes):
        result = Detections(np.array(boxes, float).reshape(-1, 4), np.array(scores, float), np.array(classes),
                            ["cup", "person"], frame_index=index)
        tracking(result)
        return result

    first = frame(0, [square(50, 50)], [0.9], [0])
    assert [(e.event, e.track_id, e.label) for e in first.events] == [("new", 1, "cup")]
    second = frame(1, [square(52, 50), square(200, 100)], [0.9, 0.8], [1, 0])
    assert [(d.track_id, d.state) for d in second] == [(1, "tracked"), (2, "tentative")]
    assert [(e.event, e.track_id, e.label, e.previous_label) for e in second.events] == [("update", 1, "person", "cup")]
    third = frame(2, [square(54, 50), square(202, 100)], [0.9, 0.8], [1, 0])
    assert [(e.event, e.track_id) for e in third.events] == [("new", 2)] and third.track_ages.tolist() == [3, 2]
    events = [e for index in range(3, 9) for e in frame(index, [square(204, 100)], [0.8], [0]).events]
    assert [(e.event, e.track_id, e.frame_index, e.label, e.age) for e in events] == [("end", 1, 6, "person", 3)]


def test_track_ids_in_json_lines_and_the_video(tmp_path):
    out, video = tmp_path / "out.jsonl", tmp_path / "out.avi"
    run_cli("run", "--source", "demo?fps=60", "--max-frames", "40", "--json", out, "--save", video, "--track",
            check=True)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(validate(record) == [] for record in records)
    frames = [r for r in records if r["type"] == "frame"]
    events = [r for r in records if r["type"] == "event"]
    assert len(frames) == 40 and {e["event"] for e in events} >= {"new"}
    tracked = [d for r in frames for d in r["detections"] if d["state"] == "tracked"]
    assert len(tracked) > 40 and all(d["track_id"] >= 1 and d["age"] >= 1 for d in tracked)
    assert {e["track_id"] for e in events if e["event"] == "new"} == {d["track_id"] for d in tracked}
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 40


def test_tracking_errors_are_one_line(tmp_path):
    from edgecnn.runtime.trackers import tracker_names

    assert tracker_names() == ["bytetrack"]
    assert_one_line_error(run_cli("run", "--source", "demo", "--max-frames", "2", "--track", "nosuch"),
                          contains="unknown tracker 'nosuch'; known: bytetrack")
    fake = tmp_path / "no-scipy" / "scipy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('scipy is not installed here')\n")
    result = run_cli("run", "--source", "demo", "--max-frames", "2", "--track", env={"PYTHONPATH": fake.parent})
    assert_one_line_error(result, contains="pip install 'edgecnn[track]'")


def test_a_classifier_cannot_be_tracked():
    from runtime_fixtures import digits_onnx

    result = run_cli("run", digits_onnx(), "--source", "demo", "--max-frames", "2", "--track")
    assert_one_line_error(result, contains="tracking needs a detector")


def test_the_demo_scene_knows_where_its_shapes_are():
    from edgecnn.runtime.demo import DemoCapture

    scene = DemoCapture(size=192, seed=1, objects=5)
    occluded = 0
    for t in (0, 40, 80):
        image, truth = scene.scene(t), scene.ground_truth(t)
        assert [track_id for track_id, *_ in truth] == [1, 2, 3, 4, 5] and truth[-1][3] == 1.0  # drawn last: all seen
        changed = np.argwhere(np.abs(image.astype(int) - scene.background.astype(int)).max(axis=2) > 0)
        inside = np.zeros(len(changed), bool)
        for _, _, (x1, y1, x2, y2), visible in truth:
            inside |= (changed[:, 1] >= x1 - 1) & (changed[:, 1] <= x2 + 1) & (changed[:, 0] >= y1 - 1) \
                & (changed[:, 0] <= y2 + 1)
            occluded += visible < 1
        assert inside.all()  # every drawn pixel lies in some shape's box
    assert occluded > 0
