"""What event clips cost at 640x480 15 FPS, and which codecs a browser plays
(benchmarks/RESULTS.md, Zones and lines: Event clips).

Footage: tests/data/tree.avi (real video, 320x240 at 15 FPS) scaled to 640x480 and played
forwards then backwards to 150 frames (10 s), held in memory so that reading it costs
nothing during the measurements. Scaled footage is smoother than a camera's own 640x480
(no sensor noise): real cameras give larger JPEG frames and video files.

1. codecs: each candidate encodes the 150 frames into a file. CPU milliseconds per frame
   (process time, all threads), bitrate, PSNR against the source frames, and whether
   headless Chromium (/usr/bin/chromium through playwright) loads the file, plays it and
   draws a frame.
2. ring: the frames go at 15 FPS in real time into a ring of the last 10 s, kept as JPEG
   at three qualities or as H.264 packets (a keyframe every second). CPU share = process
   CPU time / wall time while it runs, less the same loop's share without a ring; the
   ring's bytes once full.
3. ring quality: the PSNR of an H.264 file (superfast, CRF 23) written from the JPEG
   ring's frames at each quality, against one written from the frames themselves.
4. recorder: edgecnn.runtime.clips.ClipRecorder (10 s before, 5 s after, JPEG ring) fed
   in real time, with no event, and with one event whose 15 s clip is written while the
   frames go on; per codec, each in a process of its own: CPU share, the ring's bytes,
   the most frames waiting for the writer, and how far the process's RSS rose above
   what it held before the recorder started.

    .venv/bin/python benchmarks/clip_cost.py [--seconds 30] [--out REPORT.md]
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.core.atomic import write_text_atomic  # noqa: E402
from edgecnn.runtime.clips import ClipRecorder  # noqa: E402
from edgecnn.runtime.video_files import count_frames  # noqa: E402

WIDTH, HEIGHT, FPS, SECONDS_OF_FOOTAGE = 640, 480, 15, 10
CHROMIUM = "/usr/bin/chromium"
FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "neon", "asimd")
# name -> (library, codec, file suffix, options)
CODEC_CANDIDATES = {
    "OpenCV VP8 (default settings)": ("opencv", "VP80", ".webm", {}),
    "OpenCV VP8 1 Mbit/s (edgecnn's fallback)": ("opencv", "VP80", ".webm", {"bitrate": 1_000_000}),
    "OpenCV VP9 (default settings)": ("opencv", "VP90", ".webm", {}),
    "OpenCV mp4v (MPEG-4 Part 2)": ("opencv", "mp4v", ".mp4", {}),
    "PyAV libx264 ultrafast CRF 23": ("pyav", "libx264", ".mp4", {"preset": "ultrafast", "crf": "23"}),
    "PyAV libx264 superfast CRF 23 (edgecnn's choice)": ("pyav", "libx264", ".mp4",
                                                         {"preset": "superfast", "crf": "23"}),
    "PyAV libx264 veryfast CRF 23": ("pyav", "libx264", ".mp4", {"preset": "veryfast", "crf": "23"}),
}
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
  if (loaded !== 'loaded') return {loaded, readyState: video.readyState};
  const before = video.currentTime;
  await video.play();
  await new Promise(done => setTimeout(done, 1000));
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let i = 0; i < pixels.length; i += 4) sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
  return {loaded, readyState: video.readyState, duration: video.duration, advanced: video.currentTime - before,
          mean_pixel: sum / (pixels.length / 4 * 3)};
}"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def cpu_description() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and value.strip():
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags.update(value.split())
    except OSError:
        pass
    present = [flag for flag in FLAGS_OF_INTEREST if flag in flags]
    return f"{model}, {os.cpu_count()} cores; flags: {' '.join(present) or 'none of ' + ', '.join(FLAGS_OF_INTEREST)}"


def footage() -> list:
    capture, frames = cv2.VideoCapture(str(ROOT / "tests" / "data" / "tree.avi")), []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(image, (WIDTH, HEIGHT)))
    played = []
    while len(played) < FPS * SECONDS_OF_FOOTAGE:
        played.extend(frames if len(played) // len(frames) % 2 == 0 else frames[::-1])
    return played[:FPS * SECONDS_OF_FOOTAGE]


def encode_file(path: Path, library: str, codec: str, options: dict, frames: list) -> float:
    """Encode `frames` into `path`; the process CPU seconds it took."""
    began = time.process_time()
    if library == "opencv":
        parameters = [cv2.VIDEOWRITER_PROP_BITRATE, options["bitrate"]] if "bitrate" in options else []
        writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*codec), FPS, (WIDTH, HEIGHT),
                                 parameters)
        for image in frames:
            writer.write(image)
        writer.release()
    else:
        import av

        container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt, stream.options = WIDTH, HEIGHT, "yuv420p", dict(options)
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
        container.close()
    return time.process_time() - began


def psnr(path: Path, frames: list) -> float:
    capture, values = cv2.VideoCapture(str(path)), []
    for image in frames:
        ok, decoded = capture.read()
        if not ok:
            break
        values.append(cv2.PSNR(image, decoded))
    return float(np.mean(values)) if values else float("nan")


def chromium_plays(directory: Path, names: list) -> dict:
    """Per file: what headless Chromium made of it, or why it was not asked."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {name: "not checked: playwright is not installed" for name in names}
    if not Path(CHROMIUM).exists():
        return {name: f"not checked: no {CHROMIUM}" for name in names}
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            played = {name: page.evaluate(PLAY, name) for name in names}
            version = browser.version
            browser.close()
    finally:
        server.shutdown()
    return {name: {**result, "chromium": version} for name, result in played.items()}


def codecs(frames: list, directory: Path) -> dict:
    out, names = {}, {}
    for label, (library, codec, suffix, options) in CODEC_CANDIDATES.items():
        if library == "pyav":
            try:
                import av  # noqa: F401
            except ImportError:
                out[label] = {"error": "PyAV is not installed (pip install av)"}
                continue
        name = f"codec{len(names)}{suffix}"
        seconds = encode_file(directory / name, library, codec, options, frames)
        size = (directory / name).stat().st_size
        out[label] = {"cpu_ms_per_frame": round(seconds / len(frames) * 1000, 2),
                      "kbit_per_s": round(size * 8 / SECONDS_OF_FOOTAGE / 1000),
                      "psnr_db": round(psnr(directory / name, frames), 2),
                      "frames_read_back": count_frames(directory / name)}
        names[label] = name
    played = chromium_plays(directory, list(names.values()))
    for label, name in names.items():
        result = played[name]
        out[label]["chromium"] = result
        out[label]["plays_in_chromium"] = (isinstance(result, dict) and result.get("loaded") == "loaded"
                                           and result.get("advanced", 0) > 0.5 and result.get("mean_pixel", 0) > 10)
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def paced(frames: list, seconds: float, each) -> float:
    """Call each(image, capture_time) at FPS in real time for `seconds`; the CPU share
    of the whole process meanwhile (CPU time / wall time)."""
    count = int(seconds * FPS)
    began_wall, began_cpu = time.perf_counter(), time.process_time()
    for index in range(count):
        due = began_wall + index / FPS
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        each(frames[index % len(frames)], time.time())
    wall = time.perf_counter() - began_wall
    return (time.process_time() - began_cpu) / wall


class JpegRing:
    def __init__(self, quality: int) -> None:
        self.quality, self.ring = quality, []

    def push(self, image, capture_time) -> None:
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        self.ring.append((capture_time, jpeg))
        while self.ring[0][0] < capture_time - SECONDS_OF_FOOTAGE:
            self.ring.pop(0)

    def bytes(self) -> int:
        return sum(jpeg.nbytes for _, jpeg in self.ring)


class H264PacketRing:
    """Packets of a continuous libx264 encode with a keyframe every second: a clip from
    it must start at a keyframe, up to a second before the wanted start."""

    def __init__(self, preset: str) -> None:
        import av

        self.av = av
        self.context = av.CodecContext.create("libx264", "w")
        self.context.width, self.context.height, self.context.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        self.context.time_base, self.context.framerate = Fraction(1, FPS), Fraction(FPS)
        self.context.gop_size = FPS
        self.context.thread_count = 1
        self.context.options = {"preset": preset, "crf": "23"}
        self.ring, self.index = [], 0

    def push(self, image, capture_time) -> None:
        frame = self.av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, self.index = self.index, self.index + 1
        for packet in self.context.encode(frame):
            self.ring.append((capture_time, bytes(packet)))
        while self.ring and self.ring[0][0] < capture_time - SECONDS_OF_FOOTAGE:
            self.ring.pop(0)

    def bytes(self) -> int:
        return sum(len(data) for _, data in self.ring)


def rings(frames: list, seconds: float) -> dict:
    out = {"loop without a ring": {"cpu_share": round(paced(frames, seconds, lambda image, t: None), 4)}}
    baseline = out["loop without a ring"]["cpu_share"]
    options = {f"JPEG quality {quality}": functools.partial(JpegRing, quality) for quality in (75, 85, 95)}
    try:
        import av  # noqa: F401

        options.update({f"H.264 packets, {preset}, keyframe every 1 s": functools.partial(H264PacketRing, preset)
                        for preset in ("ultrafast", "superfast")})
    except ImportError:
        pass
    for label, make in options.items():
        ring = make()
        share = paced(frames, seconds, ring.push)
        out[label] = {"cpu_share": round(share - baseline, 4), "ring_mb_for_10_s": round(ring.bytes() / 1e6, 2)}
    return out


def ring_quality(frames: list, directory: Path) -> dict:
    try:
        import av  # noqa: F401
    except ImportError:
        return {}
    options = {"preset": "superfast", "crf": "23"}
    encode_file(directory / "direct.mp4", "pyav", "libx264", options, frames)
    out = {"frames themselves": round(psnr(directory / "direct.mp4", frames), 2)}
    for quality in (75, 85, 95):
        through = [cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)
                   for image in frames]
        encode_file(directory / f"ring{quality}.mp4", "pyav", "libx264", options, through)
        out[f"JPEG quality {quality} ring"] = round(psnr(directory / f"ring{quality}.mp4", frames), 2)
    return out


def recorder_in_its_own_process(seconds: float, codec: str, event: bool) -> dict:
    command = [sys.executable, __file__, "--seconds", str(seconds), "--recorder", codec] + (["--event"] if event else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def recorder(frames: list, seconds: float, codec: str, directory: Path, event: bool) -> dict:
    target = directory / "clips"
    lines, rss_before = [], rss_mb()
    clips = ClipRecorder(target, camera="bench", pre_seconds=SECONDS_OF_FOOTAGE, post_seconds=5,
                         buffer_seconds=SECONDS_OF_FOOTAGE, codec=codec, log=lines.append)
    pushed, largest_rss, most_waiting = [0], [rss_before], [0]

    def each(image, capture_time):
        clips.push(image, capture_time)
        pushed[0] += 1
        if event and pushed[0] == int((seconds - 10) * FPS):  # its clip ends 5 s later, 5 s before the run
            clips.trigger({"kind": "benchmark"})
        most_waiting[0] = max(most_waiting[0], clips.stats.writer_queue_frames)
        if pushed[0] % FPS == 0:
            largest_rss[0] = max(largest_rss[0], rss_mb())

    began_cpu = time.process_time()
    share = paced(frames, seconds, each)
    ring_mb = clips.stats.buffer_bytes / 1e6
    waiting = clips.stats.writer_queue_frames
    began = time.perf_counter()
    clips.close()
    cpu_seconds = time.process_time() - began_cpu  # with the clip's frames written after the run, if any
    written = sorted(target.glob("clip-*.json"))
    sidecar = json.loads(written[0].read_text()) if written else {}
    return {"cpu_share": round(share, 4), "cpu_seconds_with_close": round(cpu_seconds, 2), "ring_mb": round(ring_mb, 2),
            "rss_rise_mb": round(largest_rss[0] - rss_before, 1), "most_frames_waiting": most_waiting[0],
            "clips": len(written), "clip_frames": sidecar.get("frames"), "cut_short": sidecar.get("cut_short"),
            "frames_dropped": clips.stats.frames_dropped, "writer_queue_frames_at_end": waiting,
            "close_seconds": round(time.perf_counter() - began, 2), "log": lines}


def markdown(report: dict, command: str) -> str:
    out = [
        "# Event clips: codec and ring-buffer cost", "",
        f"`{command}` on {report['date']} at commit {report['commit']}; {report['cpu']}; "
        f"OpenCV {report['opencv']}, PyAV {report['pyav']}; Chromium {report['chromium']}.", "",
        "Footage: tests/data/tree.avi scaled to 640x480, 15 FPS, 150 frames (10 s); CPU is process time "
        "(all threads).", "",
        "## Codecs (150 frames into one file)", "",
        "| codec | CPU ms/frame | kbit/s | PSNR dB | frames read back | plays in headless Chromium |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, row in report["codecs"].items():
        if "error" in row:
            out.append(f"| {label} | {row['error']} | | | | |")
            continue
        result = row["chromium"]
        detail = (f"yes (readyState {result['readyState']}, duration {result['duration']:.2f} s, played "
                  f"{result['advanced']:.2f} s, frame drawn)" if row["plays_in_chromium"] else
                  f"no ({result if isinstance(result, str) else result.get('loaded')})")
        out.append(f"| {label} | {row['cpu_ms_per_frame']} | {row['kbit_per_s']} | {row['psnr_db']} | "
                   f"{row['frames_read_back']} | {detail} |")
    out += ["", f"## Ring buffer of the last 10 s ({report['seconds']:g} s at 15 FPS in real time)", "",
            "CPU share: of one core, less the pacing loop's own share.", "",
            "| ring | CPU share | ring MB |", "|---|---:|---:|"]
    for label, row in report["rings"].items():
        out.append(f"| {label} | {row['cpu_share'] * 100:.2f}% | {row.get('ring_mb_for_10_s', '')} |")
    if report["ring_quality"]:
        out += ["", "## What the JPEG ring costs a clip's quality", "",
                "PSNR of an H.264 file (superfast, CRF 23) against the source frames:", "",
                "| written from | PSNR dB |", "|---|---:|"]
        out += [f"| {label} | {value} |" for label, value in report["ring_quality"].items()]
    out += ["", f"## ClipRecorder end to end ({report['seconds']:g} s at 15 FPS in real time, 10 s before and "
            "5 s after, JPEG 85 ring)", "",
            "Each run in a process of its own. CPU share: of one core, all threads, while the frames go "
            "on; CPU s: the process's CPU seconds from the start until `close()` returned (a writer slower "
            "than the camera finishes its clip during close); close s: how long `close()` took; RSS rise: "
            "the largest RSS sampled once a second less the RSS before the recorder started; frames "
            "waiting: the most JPEG frames queued for the clip writer at once.", "",
            "| codec | event | CPU share | CPU s | close s | ring MB | RSS rise MB | frames waiting | clip frames |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, row in report["recorder"].items():
        codec, event = label.split(" ", 1)
        out.append(f"| {codec} | {event} | {row['cpu_share'] * 100:.2f}% | {row['cpu_seconds_with_close']} | "
                   f"{row['close_seconds']} | {row['ring_mb']} | {row['rss_rise_mb']} | {row['most_frames_waiting']} | "
                   f"{row['clip_frames'] if row['clips'] else '-'} |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="real-time seconds per ring and recorder run")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--recorder", choices=("h264", "vp8"), help=argparse.SUPPRESS)  # one recorder run
    parser.add_argument("--event", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seconds < 20:
        parser.error("--seconds must be >= 20: the event run triggers 10 s before the end, after a full ring")
    if args.recorder:
        with tempfile.TemporaryDirectory() as scratch:
            print(json.dumps(recorder(footage(), args.seconds, args.recorder, Path(scratch), args.event)))
        return
    try:
        import av
        pyav = av.__version__
    except ImportError:
        pyav = "not installed"
    report = {"date": subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M UTC"], capture_output=True, text=True).stdout.strip(),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True).stdout.strip(),
              "cpu": cpu_description(), "opencv": cv2.__version__, "pyav": pyav, "seconds": args.seconds}
    print(report["cpu"], flush=True)
    frames = footage()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        report["codecs"] = codecs(frames, directory)
        report["chromium"] = next((row["chromium"]["chromium"] for row in report["codecs"].values()
                                   if isinstance(row.get("chromium"), dict)), "not checked")
        print(json.dumps(report["codecs"], indent=1), flush=True)
        report["ring_quality"] = ring_quality(frames, directory)
        print(json.dumps(report["ring_quality"], indent=1), flush=True)
        report["rings"] = rings(frames, args.seconds)
        print(json.dumps(report["rings"], indent=1), flush=True)
    report["recorder"] = {}
    for codec in (["h264"] if pyav != "not installed" else []) + ["vp8"]:
        for event in (False, True):
            label = f"{codec} {'one 15 s clip' if event else 'no event'}"
            report["recorder"][label] = recorder_in_its_own_process(args.seconds, codec, event)
            print(label, json.dumps(report["recorder"][label]), flush=True)
    command = "python benchmarks/clip_cost.py " + " ".join(sys.argv[1:])
    text = markdown(report, command.strip())
    print(text)
    if args.out:
        write_text_atomic(args.out, text)


if __name__ == "__main__":
    main()
