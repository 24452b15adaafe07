"""The web view's page itself, in headless Chromium (Debian's chromium, driven by
playwright): live video and the result list update while a run goes on."""
import threading
import time
from pathlib import Path

import pytest

from edgecnn.runtime.runner import RunOptions, run

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                    "(apt-get install -y chromium)")
def test_web_page_shows_live_video_and_stats_in_a_browser():
    from playwright.sync_api import sync_playwright

    views = []
    import edgecnn.runtime.sinks.webview as webview

    class Recorded(webview.WebView):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            views.append(self)

    original, webview.WebView = webview.WebView, Recorded
    stop = threading.Event()
    try:
        runner = threading.Thread(target=run, kwargs={"log": lambda m: None, "options": RunOptions(
            source="demo?fps=20", sinks={"serve": "127.0.0.1:0"}, callbacks=[lambda image, r: not stop.is_set()])})
        runner.start()
        for _ in range(100):
            if views:
                break
            time.sleep(0.05)
        url = views[0].url
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("document.getElementById('video').naturalWidth > 0", timeout=15000)
            assert page.eval_on_selector("#video", "img => [img.naturalWidth, img.naturalHeight]") == [384, 384]
            page.wait_for_function("Number(document.getElementById('frames').textContent) > 10", timeout=15000)
            page.wait_for_function("document.querySelectorAll('#detections li').length > 0", timeout=15000)
            fps = float(page.text_content("#fps"))
            assert 5 < fps < 25, fps  # the demo runs at 20 FPS
            assert page.text_content("#latency").endswith("ms") and page.text_content("#dropped").isdigit()
            assert page.text_content("#status") == "running"
            items = page.eval_on_selector_all("#detections li", "items => items.map(i => i.textContent)")
            assert all(text.split()[0] in ("circle", "rectangle", "triangle") for text in items)
            browser.close()
    finally:
        stop.set()
        runner.join(timeout=10)
        webview.WebView = original
    assert not runner.is_alive()
