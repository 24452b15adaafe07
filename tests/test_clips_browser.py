"""Event clips play in a browser: headless Chromium (Debian's chromium, driven by
playwright) loads each clip in a <video>, plays it and draws its frame; OpenCV's mp4v
file is the control that a browser refuses."""
import functools
import http.server
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecnn.runtime.clips import ClipRecorder
from edgecnn.runtime.video_files import CODECS, open_video

CHROMIUM = "/usr/bin/chromium"
FPS = 15.0

PLAY = """async (name) => {
  const video = document.createElement('video');
  video.muted = true;
  video.src = name;
  document.body.appendChild(video);
  const loaded = await new Promise(done => {
    video.onloadeddata = () => done('loaded');
    video.onerror = () => done('error ' + (video.error && video.error.code));
    setTimeout(() => done('timeout'), 10000);
  });
  if (loaded !== 'loaded') return {loaded};
  await video.play();
  await new Promise(done => setTimeout(done, 700));
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let green = 0;
  for (let i = 0; i < pixels.length; i += 4) green += pixels[i + 1];
  return {loaded, width: video.videoWidth, height: video.videoHeight, duration: video.duration,
          played: video.currentTime, green: green / (pixels.length / 4)};
}"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def frame(index):
    image = np.zeros((240, 320, 3), np.uint8)
    image[:, :, 1] = 160  # green everywhere, and a square that moves
    cv2.rectangle(image, (index * 4 % 280, 100), (index * 4 % 280 + 40, 140), (255, 255, 255), -1)
    return image


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                    "(apt-get install -y chromium)")
@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_h264_and_vp8_clips_play_in_chromium_and_mp4v_does_not(tmp_path):
    from playwright.sync_api import sync_playwright

    for codec in ("h264", "vp8"):
        with ClipRecorder(tmp_path / codec, camera="door", pre_seconds=1, post_seconds=1, codec=codec,
                          log=lambda message: None) as clips:
            for index in range(45):
                clips.push(frame(index), 1_800_000_000 + index / FPS)
                if index == 20:
                    clips.trigger({"kind": "test"})
                assert clips.wait_idle(30)
        [video] = (tmp_path / codec).glob("clip-*" + CODECS[codec].suffix)
        video.rename(tmp_path / f"{codec}{video.suffix}")
    control = open_video(tmp_path / "mp4v.mp4", CODECS["mp4v"], FPS)
    for index in range(30):
        control.write(frame(index))
    control.close()

    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            played = {name: page.evaluate(PLAY, name) for name in ("h264.mp4", "vp8.webm", "mp4v.mp4")}
            browser.close()
    finally:
        server.shutdown()
    for name in ("h264.mp4", "vp8.webm"):
        clip = played[name]
        assert clip["loaded"] == "loaded" and (clip["width"], clip["height"]) == (320, 240), (name, clip)
        # frames 5 to 35 of a 15 FPS stream: 31 frames, about 2 s
        assert abs(clip["duration"] - 31 / FPS) < 0.15 and clip["played"] > 0.3, (name, clip)
        assert 130 < clip["green"] < 190, (name, clip)  # a frame was drawn, and it is this stream's
    assert played["mp4v.mp4"]["loaded"] == "error 4", played  # MEDIA_ERR_SRC_NOT_SUPPORTED
