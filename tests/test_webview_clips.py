"""The web view's event clips over real HTTP on 127.0.0.1: /clips lists the finished
clips of every camera newest first from their sidecars, /clips/NAME serves one whole or
the byte range asked for, nothing else in or outside the clip directories can be asked
for, the token guards both, a reader that stops reading frees its worker, and a run
hands the web view its cameras' clip directories (in a browser:
test_webview_clips_browser.py)."""
import http.client
import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from edgecnn.runtime.clips import ClipRecorder
from edgecnn.runtime.http_server import byte_range
from edgecnn.runtime.sinks.webview import WebView
from edgecnn.runtime.stats import RunStats, StreamStats

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

TOKEN = "c1ips-t0ken-8f3k2m"
FPS = 15.0


def record_clip(directory, camera, start, event, frames=30):
    """One clip of `frames` frames (a trigger at the middle, a second of frames on each
    side), its capture times from `start`; returns (video path, sidecar dict)."""
    with ClipRecorder(directory, camera=camera, pre_seconds=1, post_seconds=1, log=lambda message: None) as clips:
        for index in range(frames):
            image = np.full((120, 160, 3), 90, np.uint8)
            image[40:80, index * 4 % 120:index * 4 % 120 + 40] = 255
            clips.push(image, start + index / FPS)
            if index == frames // 2:
                clips.trigger(event, key=f"track-{event['track_id']}", track_id=event["track_id"],
                              at=start + index / FPS)
        assert clips.wait_idle(30)
    [sidecar] = [p for p in Path(directory).glob("clip-*.json") if json.loads(p.read_text())["start"] >= start]
    found = json.loads(sidecar.read_text())
    return Path(directory) / found["video"], found


def get(view, path, headers=None, token=True):
    """(status, headers, body) of one GET, the token in the query unless token=False."""
    port = view.server.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        separator = "&" if "?" in path else "?"
        connection.request("GET", path + (f"{separator}token={TOKEN}" if token else ""), headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def clip_dirs(tmp_path_factory):
    """Two cameras' directories: door has two clips, yard one between them in time."""
    root = tmp_path_factory.mktemp("clips")
    made = {
        "door-old": record_clip(root / "door", "door", 1_800_000_000.0,
                                {"event": "cross", "line": "gate", "direction": "in", "label": "circle",
                                 "track_id": 3}),
        "yard": record_clip(root / "yard", "yard", 1_800_000_100.0,
                            {"event": "enter", "zone": "lawn", "label": "triangle", "track_id": 9}),
        "door-new": record_clip(root / "door", "door", 1_800_000_200.0,
                                {"event": "new", "label": "rectangle", "track_id": 12}),
    }
    return root, {"door": str(root / "door"), "yard": str(root / "yard")}, made


def test_byte_ranges_follow_rfc_9110_for_one_range_and_ignore_the_rest():
    assert byte_range(None, 1000) == ("whole", 0, 999)
    assert byte_range("bytes=0-99", 1000) == ("partial", 0, 99)
    assert byte_range("bytes=900-", 1000) == ("partial", 900, 999)
    assert byte_range("bytes=-50", 1000) == ("partial", 950, 999)
    assert byte_range("bytes=990-5000", 1000) == ("partial", 990, 999)  # the end clipped to the file
    assert byte_range("bytes=-5000", 1000) == ("partial", 0, 999)
    for unsatisfiable in ("bytes=1000-", "bytes=1000-1001", "bytes=-0", "bytes=" + "9" * 5000 + "-"):
        assert byte_range(unsatisfiable, 1000) == ("unsatisfiable", 0, 0), unsatisfiable
    for ignored in ("bytes=0-1,5-6", "bytes=5-2", "items=0-5", "bytes=x-5", "bytes=-", "bytes=\u0663-5", "bytes"):
        assert byte_range(ignored, 1000) == ("whole", 0, 999), ignored


def test_clips_are_listed_newest_first_and_each_plays_whole_or_by_range(clip_dirs):
    root, directories, made = clip_dirs
    view = WebView("127.0.0.1:0", RunStats(["door", "yard"]), token=TOKEN, clip_dirs=directories)
    try:
        status, headers, body = get(view, "/clips")
        page = body.decode()
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        names = [video.name for video, _ in (made["door-new"], made["yard"], made["door-old"])]
        positions = [page.index(f'data-clip="{name}"') for name in names]
        assert positions == sorted(positions), "newest first"
        for video, sidecar in made.values():
            row = page[page.index(f'data-clip="{video.name}"'):].split("</tr>")[0]
            assert f"<td>{sidecar['camera']}</td>" in row and f"<td>{sidecar['frames']}</td>" in row
            assert f"<td>{sidecar['end'] - sidecar['start']:.1f}</td>" in row
            assert f'href="/clips/{video.name}?token={TOKEN}"' in row  # the token rides on every link
        assert "cross gate in (circle #3)" in page and "enter lawn (triangle #9)" in page
        assert "new (rectangle #12)" in page
        only_yard = get(view, "/clips?camera=yard")[2].decode()
        assert made["yard"][0].name in only_yard and made["door-old"][0].name not in only_yard

        video, _ = made["door-old"]
        data, size = video.read_bytes(), video.stat().st_size
        kind = "video/mp4" if video.suffix == ".mp4" else "video/webm"
        status, headers, body = get(view, f"/clips/{video.name}")
        assert (status, headers["Content-Type"], body) == (200, kind, data) and headers["Accept-Ranges"] == "bytes"
        for asked, (first, last) in (("bytes=0-99", (0, 99)), ("bytes=100-", (100, size - 1)),
                                     ("bytes=-64", (size - 64, size - 1))):
            status, headers, body = get(view, f"/clips/{video.name}", {"Range": asked})
            assert status == 206 and headers["Content-Range"] == f"bytes {first}-{last}/{size}", (asked, headers)
            assert body == data[first:last + 1] and headers["Content-Length"] == str(last - first + 1)
        status, headers, body = get(view, f"/clips/{video.name}", {"Range": f"bytes={size}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}" and body == b""
        status, _, body = get(view, f"/clips/{video.name}", {"Range": "bytes=0-9,20-29"})
        assert status == 200 and body == data  # several ranges: the whole file

        grid = get(view, "/")[2].decode()
        assert f'id="clips-link" href="/clips?token={TOKEN}"' in grid
        camera = get(view, "/camera/yard")[2].decode()
        assert f'id="clips-link" href="/clips?camera=yard&amp;token={TOKEN}"' in camera
    finally:
        view.close()


def test_only_finished_clips_are_served_and_the_token_comes_first(clip_dirs, tmp_path):
    root, directories, made = clip_dirs
    door = Path(directories["door"])
    video = made["door-old"][0]
    unfinished = door / ("clip-29990101T000000.000Z-door-writing" + video.suffix)  # no sidecar yet
    unfinished.write_bytes(video.read_bytes())
    outside = root / ("clip-29990101T000000.000Z-outside" + video.suffix)
    outside.write_bytes(video.read_bytes())
    outside.with_suffix(".json").write_text("{}")
    linked = door / ("clip-29990101T000000.000Z-door-link" + video.suffix)
    linked.symlink_to("/etc/passwd")
    linked.with_suffix(".json").write_text("{}")
    (door / "notes.txt").write_text("not a clip")
    view = WebView("127.0.0.1:0", StreamStats(), token=TOKEN, clip_dirs={"": str(door)})
    try:
        assert get(view, "/clips", token=False)[0] == 401
        assert get(view, f"/clips/{video.name}", token=False)[0] == 401
        assert get(view, "/clips/..%2F..%2Fetc%2Fpasswd", token=False)[0] == 401  # no answer about names first
        for name in ("..%2F" + outside.name, "%2E%2E/" + outside.name, outside.name, "..", "../yard",
                     video.with_suffix(".json").name, unfinished.name, linked.name, "notes.txt",
                     video.name + "%00", video.name + "/x", "%2Fetc%2Fpasswd", "sub/" + video.name,
                     "." + video.name, video.name.upper()):
            assert get(view, f"/clips/{name}")[0] == 404, name
        page = get(view, "/clips")[2].decode()
        assert video.name in page and unfinished.name not in page and linked.name not in page
        assert get(view, f"/clips/{video.name}")[0] == 200
        assert get(view, "/camera/door")[0] == 404  # a one-camera view has no camera pages
        assert 'id="clips-link"' in get(view, "/")[2].decode()
    finally:
        view.close()
    plain = WebView("127.0.0.1:0", StreamStats())  # a run without clips: no /clips at all
    try:
        port = plain.server.server_address[1]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/clips")
        assert connection.getresponse().status == 404
        connection.close()
    finally:
        plain.close()


def test_a_reader_that_stops_reading_frees_its_worker_and_downloads_are_bounded(tmp_path):
    """A clip larger than the socket buffers, asked for by clients that never read: each
    worker gives up after the write timeout; meanwhile a download beyond max_clients gets
    503 and the pages still answer."""
    directory = tmp_path / "clips"
    directory.mkdir()
    big = directory / "clip-20270101T000000.000Z-cam-track-1.mp4"
    big.write_bytes(os.urandom(24 * 1024 * 1024))
    big.with_suffix(".json").write_text(json.dumps({"video": big.name, "camera": "cam", "start": 1.0, "end": 2.0,
                                                    "frames": 15, "event": {"event": "new"}}))
    view = WebView("127.0.0.1:0", StreamStats(), max_clients=2, clip_dirs={"": str(directory)})
    view.server.write_timeout = 1.0
    port = view.server.server_address[1]
    stalled = []
    try:
        for _ in range(2):
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", port))
            client.sendall(f"GET /clips/{big.name} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            stalled.append(client)
        time.sleep(0.5)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", f"/clips/{big.name}")
        assert connection.getresponse().status == 503  # two downloads at once at most
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/stats.json")
        assert connection.getresponse().status == 200  # the pages have workers of their own
        connection.close()
        deadline = time.monotonic() + 10
        while view.server.counts()["timeouts"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert view.server.counts()["timeouts"] == 2, view.server.counts()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", f"/clips/{big.name}", headers={"Range": "bytes=0-1023"})
        response = connection.getresponse()
        assert response.status == 206 and response.read() == big.read_bytes()[:1024]  # the slots came back
        connection.close()
    finally:
        for client in stalled:
            client.close()
        view.close()


def test_a_run_gives_the_web_view_each_cameras_clip_directory(tmp_path, monkeypatch):
    """A config's clips: per camera reach the run-wide web view as {camera: directory};
    a one-camera run's --clips as {"": directory}."""
    import edgecnn.runtime.sinks.webview as webview
    from edgecnn.runtime.config import load_config
    from edgecnn.runtime.runner import RunOptions, run

    seen = []

    class Recorded(webview.WebView):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(dict(self.clip_dirs))

    monkeypatch.setattr(webview, "WebView", Recorded)
    config = tmp_path / "run.yaml"
    config.write_text(f"cameras:\n"
                      f"  front: {{source: 'demo?fps=60&size=128', max_frames: 3, clips: {tmp_path / 'front'}}}\n"
                      f"  back: {{source: 'demo?fps=60&size=128&seed=1', max_frames: 3}}\n"
                      f"serve: 127.0.0.1:0\njson: {tmp_path / 'all.jsonl'}\n")
    run(load_config(str(config)), log=lambda message: None)
    run(RunOptions(source="demo?fps=60&size=128", max_frames=2, sinks={
        "serve": "127.0.0.1:0", "clips": str(tmp_path / "one"), "json": str(tmp_path / "one.jsonl")}),
        log=lambda message: None)
    assert seen == [{"front": str(tmp_path / "front")}, {"": str(tmp_path / "one")}]
