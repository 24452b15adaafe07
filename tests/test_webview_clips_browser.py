"""The web view's clips in headless Chromium (Debian's chromium, driven by playwright):
a run with a line, --clips and --serve with a token writes clips of a shape crossing
the line; the live page links to /clips, which lists them, and a listed clip plays
in the page's player (the browser fetches it with Range requests)."""
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.core.scenes import shape_polygon, textured_background
from edgecnn.runtime.runner import RunOptions, run

CHROMIUM = "/usr/bin/chromium"
TOKEN = "br0wser-clips-7c4x9w"
SIZE, FPS = 256, 15


def crossing_video(path, frames=45):
    """A circle gliding right across x = 128, once per pass of the file."""
    background, _ = textured_background(np.random.default_rng(3), (SIZE, SIZE))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (SIZE, SIZE))
    for index in range(frames):
        image = background.copy()
        outline = shape_polygon("circle", (30 + 200 * index / (frames - 1), 130), 30, 0.0)
        cv2.fillPoly(image, [np.round(outline).astype(np.int32)], (40, 40, 230))
        writer.write(image)
    writer.release()


@pytest.mark.slow(18)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                    "(apt-get install -y chromium)")
def test_a_listed_clip_plays_in_the_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    import edgecnn.runtime.sinks.webview as webview

    video, clips = tmp_path / "crossing.avi", tmp_path / "clips"
    crossing_video(video)
    views = []

    class Recorded(webview.WebView):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            views.append(self)

    original, webview.WebView = webview.WebView, Recorded
    stop = threading.Event()
    runner = threading.Thread(target=run, kwargs={"log": lambda m: None, "options": RunOptions(
        source=f"{video}?fps={FPS}&loop=1", lines=[f"door={SIZE // 2},0,{SIZE // 2},{SIZE}"],
        sinks={"serve": "127.0.0.1:0", "token": TOKEN, "clips": str(clips), "clips_pre": 0.5, "clips_post": 0.5},
        callbacks=[lambda image, result: not stop.is_set()])})
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not list(clips.glob("clip-*.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(clips.glob("clip-*.json")), "no clip was written"
        url = views[0].url
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page()
            answers = []  # (url, status, the Range asked for) of every response
            page.on("response", lambda response: answers.append(
                (response.url, response.status, response.request.headers.get("range"))))
            page.goto(url)
            page.click("#clips-link")
            page.wait_for_selector("#clips tbody tr[data-clip]", timeout=15000)
            first = page.eval_on_selector("#clips tbody tr[data-clip]", "row => row.dataset.clip")
            assert (clips / first).is_file() and first.startswith("clip-")
            cells = page.eval_on_selector_all("#clips tbody tr[data-clip] >> nth=0 >> td",
                                              "cells => cells.map(c => c.textContent)")
            assert cells[2].startswith("cross door") and int(cells[5]) > 0, cells
            page.click("#clips tbody tr[data-clip] >> nth=0 >> button.play")
            page.wait_for_function("document.getElementById('player').readyState >= 2", timeout=15000)
            start = page.evaluate("document.getElementById('player').currentTime")
            page.wait_for_function(f"document.getElementById('player').currentTime > {start} + 0.3", timeout=15000)
            playing = page.evaluate("""() => { const v = document.getElementById('player');
                return {error: v.error && v.error.code, width: v.videoWidth, duration: v.duration,
                        src: v.currentSrc}; }""")
            assert playing["error"] is None and playing["width"] == SIZE and playing["duration"] > 0.5, playing
            assert playing["src"].endswith(f"/clips/{first}?token={TOKEN}")
            media = [(status, asked) for address, status, asked in answers if f"/clips/{first}" in address]
            assert media and all(status == 206 for status, asked in media if asked), answers
            assert any(status == 206 for status, _ in media), media  # the player asked for byte ranges
            browser.close()
    finally:
        stop.set()
        runner.join(timeout=30)
        webview.WebView = original
    assert not runner.is_alive()
