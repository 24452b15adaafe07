"""The web view of a run of several cameras, in headless Chromium (Debian's chromium,
driven by playwright): the grid's tiles update with each camera's video and vitals, a
camera that cannot be reached is marked as such, and each camera's page shows its
model card and a chart that fills with points."""
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def closed_port() -> int:
    """A loopback port nothing listens on: a camera that is offline."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow(20)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                    "(apt-get install -y chromium)")
def test_the_grid_and_each_camera_page_in_a_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    from edgecnn.runtime.config import load_config
    from edgecnn.runtime.runner import Run

    config = tmp_path / "cameras.yaml"
    config.write_text(f"""cameras:
  front: {{source: "demo?seed=1&fps=15"}}
  rear.2: {{source: "demo?seed=2&fps=10"}}
  gone: {{source: "http://127.0.0.1:{closed_port()}/stream.mjpg?timeout=1"}}
serve: 127.0.0.1:0
""")
    run = Run(load_config(str(config)), lambda message: None)
    runner = threading.Thread(target=run.execute, args=(time.perf_counter(),), daemon=True)
    runner.start()
    try:
        for _ in range(600):
            if run.run_sinks:
                break
            time.sleep(0.05)
        view = run.run_sinks[0].sink
        card = view.cards["rear.2"]  # the bundled model's card, as the runner gave it to the view
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(view.url)
            tiles = "document.querySelectorAll('[data-camera]')"
            assert page.eval_on_selector_all("[data-camera]", "t => t.map(e => e.dataset.camera)") == \
                ["front", "rear.2", "gone"]
            for name in ("front", "rear.2"):
                tile = f"Array.from({tiles}).find(t => t.dataset.camera === {name!r})"
                page.wait_for_function(f"{tile}.querySelector('img').naturalWidth > 0", timeout=15000)
                page.wait_for_function(f"{tile}.dataset.state === 'live' && "
                                       f"Number({tile}.querySelector('.frames').textContent) > 5", timeout=15000)
                before = int(page.evaluate(f"{tile}.querySelector('.frames').textContent"))
                page.wait_for_function(f"Number({tile}.querySelector('.frames').textContent) > {before}",
                                       timeout=5000)  # it updates
                fps = float(page.evaluate(f"{tile}.querySelector('.fps').textContent"))
                assert 3 < fps < 20, (name, fps)
                assert page.evaluate(f"getComputedStyle({tile}.querySelector('.overlay')).display") == "none"
            gone = f"Array.from({tiles}).find(t => t.dataset.camera === 'gone')"
            page.wait_for_function(f"{gone}.dataset.state === 'reconnecting'", timeout=15000)
            assert page.evaluate(f"getComputedStyle({gone}.querySelector('.overlay')).display") != "none"
            assert page.evaluate(f"{gone}.querySelector('.overlay').textContent") == "reconnecting"
            page.screenshot(path=str(tmp_path / "grid.png"))

            page.click("text=rear.2")  # a tile's name leads to its camera's page
            page.wait_for_url("**/camera/rear.2")
            page.wait_for_function("document.getElementById('video').naturalWidth > 0", timeout=15000)
            assert page.eval_on_selector_all("#labels li", "items => items.map(i => i.textContent)") == card["labels"]
            accuracy = page.text_content("#card-accuracy")
            assert accuracy.startswith("map50_95 ") and accuracy.split()[1].endswith("%"), accuracy
            assert f"{100 * card['metrics']['map50_95']:.2f}%" in accuracy
            assert page.text_content("#card-precision") == card["precision"]
            assert page.text_content("#card-budget")  # fp32: the reference; int8: its drop within the budget
            page.wait_for_function("document.getElementById('state').textContent === 'live'", timeout=10000)
            page.wait_for_function("Number(document.getElementById('chart').dataset.points) >= 3", timeout=15000)
            page.screenshot(path=str(tmp_path / "camera.png"), full_page=True)
            browser.close()
    finally:
        run.stop_requested.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
