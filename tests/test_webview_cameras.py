"""The web view of several cameras over real HTTP on 127.0.0.1: its paths, the token on
every one of them, a viewer limit per camera, frames encoded only for the cameras
someone watches, names escaped wherever they appear (the page itself, in a browser:
test_webview_cameras_browser.py)."""
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from edgecnn.runtime.stats import RunStats
from edgecnn.runtime.sinks.webview import WebView

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

TOKEN = "s3cret-token-4hj2k9"


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def frame_of(camera):
    from edgecnn.tasks.classify.result import Classes

    result = Classes(np.array([1.0]), ["a"])
    result.camera = camera
    return np.zeros((24, 32, 3), np.uint8), result


def test_each_camera_has_its_page_stream_and_series_behind_the_token():
    stats = RunStats(["front", "rear.2"])
    view = WebView("127.0.0.1:0", stats, token=TOKEN, max_clients=1,
                   cards={"front": {"task": "classify", "labels": ["<b>cat</b>", "dog"], "precision": "int8",
                                    "input_size": [32, 32], "metrics": {"top1": 0.9, "dataset": "pets",
                                                                        "drop_points": 0.4, "max_drop_points": 1.0}}})
    base, query = view.url.split("?")[0], "?token=" + TOKEN
    try:
        for path in ("", "camera/front", "camera/rear.2", "camera/front/stream.mjpg", "camera/front/series.json",
                     "stats.json", "healthz", "metrics"):
            assert fetch(base + path)[0] == 401, path  # the token guards every path
        for path in ("stream.mjpg", "camera/back", "camera/front/x", "camera/front/stream.mjpg/x", "camera",
                     "camera/..%2Fstats.json", "favicon.ico"):
            assert fetch(base + path + query)[0] == 404, path
        code, content_type, grid = fetch(base + query)
        assert code == 200 and content_type.startswith("text/html")
        assert b'href="/camera/front?token=' + TOKEN.encode() + b'"' in grid
        assert b'data-stream="/camera/rear.2/stream.mjpg?token=' + TOKEN.encode() + b'"' in grid
        code, _, page = fetch(base + "camera/front" + query)
        assert code == 200 and b"<li>&lt;b&gt;cat&lt;/b&gt;</li>" in page and b"<b>cat" not in page
        assert b"top1 90.00% (pets)" in page and b"0.40 points lost against fp32, within the budget of 1.00" in page
        assert b"<td>card</td><td>none</td>" in fetch(base + "camera/rear.2" + query)[2]  # no card given

        stats.cameras["front"].series.origin -= 3  # three seconds of results, one a second
        for second in range(3):
            stats.cameras["front"].series.add(stats.cameras["front"].series.origin + second + 0.5, 4.0, 9.0)
        reply = json.loads(fetch(base + "camera/front/series.json" + query)[2])
        assert [p["t"] for p in reply["points"]] == [0, 1, 2] and reply["now"] >= 3
        assert reply["points"][0] == {"t": 0, "frames": 1, "inference_ms": 4.0, "age_ms": 9.0}
        newer = json.loads(fetch(base + "camera/front/series.json" + query + "&after=1")[2])
        assert [p["t"] for p in newer["points"]] == [2]
        assert fetch(base + "camera/front/series.json" + query + "&after=soon")[0] == 400

        snapshot = json.loads(fetch(base + "stats.json", {"Authorization": f"Bearer {TOKEN}"})[2])
        assert set(snapshot["cameras"]) == {"front", "rear.2"} and "web" in snapshot
    finally:
        view.close()


def test_frames_are_encoded_only_for_the_cameras_someone_watches():
    stats = RunStats(["watched", "unwatched"])
    view = WebView("127.0.0.1:0", stats, max_clients=1)
    base = view.url
    try:
        for camera in ("watched", "unwatched"):
            view.write(*frame_of(camera))  # each camera's first frame is encoded, for a first viewer
        viewer = urllib.request.urlopen(base + "camera/watched/stream.mjpg", timeout=5)
        assert viewer.read(9) == b"--frame\r\n"
        assert fetch(base + "camera/watched/stream.mjpg")[0] == 503  # that camera's one viewer slot is taken
        second = urllib.request.urlopen(base + "camera/unwatched/stream.mjpg", timeout=5)  # another camera's
        second.close()
        deadline = time.monotonic() + 5
        while view.pictures["unwatched"].watchers and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(5):
            for camera in ("watched", "unwatched"):
                view.write(*frame_of(camera))
        assert view.pictures["watched"].sequence == 6 and view.pictures["unwatched"].sequence == 1
        viewer.close()
    finally:
        view.close()
