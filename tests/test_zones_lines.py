"""Zones and lines on a run, end to end: a video in which a shape crosses a line twice
gives two `cross` events on MQTT (the real mosquitto), the retained counts, Home
Assistant discovery entities, and a clip that OpenCV reads back covering both
crossings; zone events and counts in the records; one-line errors for bad zones and
lines at start."""
import json
import time

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from edgecnn.core.scenes import shape_polygon, textured_background
from edgecnn.runtime.schema import validate
from test_publish import Broker, Subscriber, needs_broker

FPS, SIZE, LINE_X = 15, 384, 192


def crossing_video(path, frames=75):
    """A circle gliding right across x = 192 (a line drawn downwards: its left, the `in`
    side by default, is the image's right), then back: two crossings, the first about
    frame 22, the second about frame 53 (its centre at 5.5 px a frame)."""
    background, _ = textured_background(np.random.default_rng(7), (SIZE, SIZE))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (SIZE, SIZE))
    xs = []
    for index in range(frames):
        phase = index if index < 38 else 75 - index
        x = 70 + 6.5 * phase
        image = background.copy()
        cv2.fillPoly(image, [np.round(shape_polygon("circle", (x, 200), 45, 0.0)).astype(np.int32)],
                     (40, 40, 230))
        writer.write(image)
        xs.append(x)
    writer.release()
    return xs


@needs_broker
@pytest.mark.slow(14)
def test_two_crossings_give_two_events_retained_counts_discovery_and_one_clip(tmp_path):
    video = tmp_path / "crossing.avi"
    xs = crossing_video(video)
    broker = Broker(tmp_path)
    broker.start()
    subscriber = Subscriber(broker.port, "shop")
    discovery = Subscriber(broker.port, "homeassistant")
    try:
        result = run_cli("run", "--source", video, "--line", f"door={LINE_X},0,{LINE_X},{SIZE}",
                         "--zone", "left=0,0,0.5,0,0.5,1,0,1", "--json", tmp_path / "records.jsonl",
                         "--publish", f"mqtt://127.0.0.1:{broker.port}/shop", "--publish-qos", "1",
                         "--publish-discovery", "homeassistant", "--clips", tmp_path / "clips", "--clips-pre", "1",
                         "--clips-post", "1")
        assert result.returncode == 0, result.stderr
        assert subscriber.wait_for("shop/available", "offline")
        time.sleep(0.3)
        crossings = [json.loads(p) for t, p in subscriber.messages if t == "shop/events"
                     and json.loads(p)["event"] == "cross"]
        assert [c["direction"] for c in crossings] == ["in", "out"] and {c["line"] for c in crossings} == {"door"}
        assert all(validate(c) == [] for c in crossings)
        retained = dict(subscriber.messages)
        assert retained["shop/door/in/circle"] == "1" and retained["shop/door/out/circle"] == "1"
        assert retained["shop/left/circle"] in ("0", "1")
        entities = {t: json.loads(p) for t, p in discovery.messages if t.endswith("/config")}
        states = {e["state_topic"] for e in entities.values()}
        assert {"shop/door/in/circle", "shop/door/out/circle", "shop/left/circle"} <= states
        assert all(e["availability_topic"] == "shop/available" for e in entities.values())
    finally:
        subscriber.close()
        discovery.close()
        broker.stop()
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert all(validate(r) == [] for r in records)
    zone_events = [r for r in records if r["type"] == "event" and r.get("zone") == "left"]
    assert [e["event"] for e in zone_events][:3] == ["enter", "exit", "enter"]  # seen inside first, leaves, comes back
    assert any(r["type"] == "counts" for r in records)
    frames = {r["frame"]: r["capture_time"] for r in records if r["type"] == "frame"}
    times = [c["capture_time"] for c in crossings]
    (clip,) = [p for p in (tmp_path / "clips").iterdir() if p.suffix in (".mp4", ".webm")]
    sidecar = json.loads(clip.with_suffix(".json").read_text())
    # one clip: the circle's first event (entering the zone it starts in) opens it, its
    # presence and its crossings extend it to a second past the last crossing
    first, last = min(frames.values()), max(frames.values())
    assert sidecar["start"] <= max(first, times[0] - 0.9) + 1e-3 and sidecar["end"] >= min(last, times[1] + 0.9) - 1e-3
    capture, count = cv2.VideoCapture(str(clip)), 0
    while capture.read()[0]:
        count += 1
    expected = sum(1 for t in frames.values() if sidecar["start"] <= t <= sidecar["end"])
    assert abs(count - expected) <= 2 and count >= (times[1] - times[0] + 2) * FPS * 0.8, (count, expected)


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
@pytest.mark.runtime
def test_bad_zones_and_lines_are_one_line_at_start(tmp_path):
    cases = [
        (["--zone", "dock=0,0,1,1"], "zone 'dock'"),  # two points
        (["--zone", "bow=0,0,1,1,1,0,0,1"], "zone 'bow'"),  # self-intersecting
        (["--line", "gate=5,5,5,5"], "line 'gate'"),  # zero length
        (["--zone", "dock=0,0,0.5,0,0.5,1:labels=person"], "the model has no label 'person'"),
        (["--line", "gate=0,0,1,1:in=up"], "in_side must be left or right"),
        (["--zone", "dock=0,0,0.5,0,0.5,1:speed=3"], "unknown option 'speed'"),
        (["--zone", "dock"], "--zone takes NAME=x1,y1"),
        (["--clips", "/proc/edgecnn-clips", "--line", "gate=0,0,1,1"], "cannot write into --clips /proc/edgecnn-clips"),
    ]
    for args, message in cases:
        result = run_cli("run", "--source", "demo", "--max-frames", "3", "--json", tmp_path / "x.jsonl", *args)
        assert_one_line_error(result, contains=message)
    outside = run_cli("run", "--source", "demo?size=128", "--max-frames", "3", "--json", tmp_path / "y.jsonl",
                      "--zone", "far=10,10,500,10,500,500")
    assert outside.returncode == 2 and "outside" in outside.stderr.strip().splitlines()[-1]


@pytest.mark.runtime
def test_a_config_places_zones_on_its_cameras_and_refuses_an_unknown_camera(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text("cameras:\n  front: {source: 'demo?fps=60&size=192', max_frames: 20}\n"
                      "zones:\n  dock: {camera: front, points: '0.1,0.1 0.9,0.1 0.9,0.9 0.1,0.9'}\n"
                      "lines:\n  gate: {camera: back, points: '0.5,0 0.5,1'}\n")
    assert_one_line_error(run_cli("run", "--config", config, "--check"),
                          contains=f"{config}:6: lines.gate: no camera named 'back'; known: front")
    config.write_text("cameras:\n  front: {source: 'demo?fps=60&size=192', max_frames: 20}\n"
                      "zones:\n  dock: {camera: front, points: '0.1,0.1 0.9,0.1 0.9,0.9 0.1,0.9'}\n")
    result = run_cli("run", "--config", config, "--json", tmp_path / "all.jsonl")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert any(r["type"] == "counts" and r["camera"] == "front" and "dock" in r.get("zones", {}) for r in records)


@pytest.mark.runtime
def test_the_python_stream_gives_zone_events_and_counts():
    import edgecnn

    model = edgecnn.load(log=None)
    events, frames = [], 0
    for image, result in model.stream("demo?fps=60", max_frames=90,
                                      zones={"mid": "0.25,0.25 0.75,0.25 0.75,0.75 0.25,0.75"},
                                      lines={"cut": {"points": "0.5,0 0.5,1", "in": "right"}}):
        frames += 1
        events += [event.to_dict()["event"] for event in result.analytics.events]
        assert set(result.analytics.occupancy) == {"mid"} and set(result.analytics.line_counts) == {"cut"}
        assert all(track_id >= -1 for track_id in result.track_ids)  # tracked, since zones follow tracks
    assert frames == 90 and events and set(events) <= {"enter", "exit", "dwell", "cross"}


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
@pytest.mark.runtime
def test_the_readme_several_cameras_example_runs_as_written(tmp_path):
    import re
    import subprocess
    import sys

    from runtime_fixtures import ROOT

    readme = (ROOT / "README.md").read_text()
    example = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "zones=zones" in block)
    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    printed = [line.split() for line in result.stdout.splitlines()]
    assert printed and all(words[0] == "door" and words[1] in {"enter", "exit", "dwell"} and words[2] == "dock"
                           for words in printed)


@pytest.mark.runtime
def test_the_readme_config_example_is_valid(tmp_path):
    import re
    import shutil

    from runtime_fixtures import ROOT

    readme = (ROOT / "README.md").read_text()
    config = next(block for block in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "cameras:" in block)
    (tmp_path / "shop.yaml").write_text(config)
    shutil.copy(ROOT / "edgecnn" / "assets" / "shapes_detector-int8.tflite", tmp_path)
    result = run_cli("run", "--config", tmp_path / "shop.yaml", "--check")
    assert result.returncode == 0, result.stderr
    assert "2 camera(s), 1 model(s)" in result.stdout + result.stderr


@pytest.mark.runtime
def test_several_cameras_place_zones_on_the_camera_they_name():
    from edgecnn.core.errors import UserError
    from edgecnn.runtime.runner import _places_by_camera

    placed = _places_by_camera({"dock": {"camera": "door", "points": "0,0 1,0 1,1"}, "all": "0,0 1,0 0,1"}, "zones",
                               ["door", "yard"])
    assert placed == {"door": {"dock": {"points": "0,0 1,0 1,1"}, "all": "0,0 1,0 0,1"}, "yard": {"all": "0,0 1,0 0,1"}}
    with pytest.raises(UserError, match="zones dock: no camera named 'gate'; known: door, yard"):
        _places_by_camera({"dock": {"camera": "gate", "points": "0,0 1,0 1,1"}}, "zones", ["door", "yard"])
