"""Where the memory of a long `edgecnn run` goes (benchmarks/RESULTS.md, "Soak and
faults"): the soak's pipeline (benchmarks/soak.py: the MJPEG stand-in camera, tracking,
JSON lines, the video, MQTT to mosquitto and the web view) run in this process, with
tracemalloc started after a warm-up. Every --every seconds: RSS (anonymous and file
pages) and the Python allocations still held that were made since tracemalloc started.
At the end, the allocation sites whose held memory grew most, by file and line
(--depth frames of traceback, grouped by the innermost edgecnn frame when there is
one), and how much of the RSS growth Python's allocations explain (the rest is native:
FFmpeg, libx264, LiteRT, the allocator).

    python benchmarks/investigations/soak_memory.py [--minutes 8] [--warmup-minutes 2] [--every 60]
        [--without video,publish,serve,json,track]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import soak  # noqa: E402  (benchmarks/soak.py: the camera, the broker, /proc)
from edgecnn.runtime.runner import Run, RunOptions, plan_from_options  # noqa: E402


def held_by_site(snapshot: tracemalloc.Snapshot, depth: int):
    """Bytes and blocks held per site: the innermost edgecnn frame of each traceback, else
    the innermost frame."""
    sites: dict = collections.defaultdict(lambda: [0, 0])
    for stat in snapshot.statistics("traceback"):
        frames = list(reversed(stat.traceback))[:depth]  # tracemalloc lists the oldest first
        ours = next((f for f in frames if "/edgecnn/" in f.filename), frames[0])
        key = f"{Path(ours.filename).relative_to(ROOT) if str(ours.filename).startswith(str(ROOT)) else ours.filename}" \
              f":{ours.lineno}"
        sites[key][0] += stat.size
        sites[key][1] += stat.count
    return sites


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--warmup-minutes", type=float, default=2.0)
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--without", default="", help="outputs left out: video, publish, serve, json, track")
    parser.add_argument("--no-trace", action="store_true", help="RSS only (tracemalloc's own records take memory)")
    parser.add_argument("--poll-stats", type=float, default=0.0,
                        help="fetch /stats.json this many times a second, as the web view's page does (2)")
    args = parser.parse_args()
    without = {name for name in args.without.split(",") if name}
    work = Path(tempfile.mkdtemp(prefix="edgecnn-soak-memory-"))
    camera_module = soak.load_camera_module()
    camera = camera_module.MjpegCamera(soak.scene_frames("demo", 450, args.fps, camera_module), fps=args.fps)
    broker = None
    sinks = {}
    if "json" not in without:
        sinks["json"] = str(work / "soak.jsonl")
    if "video" not in without:
        sinks["save"] = str(work / "soak.mp4")
    if "serve" not in without:
        sinks.update(serve=f"127.0.0.1:{soak.free_port()}", token="t" * 16)
    if "publish" not in without:
        broker = soak.Broker(work)
        broker.start()
        sinks.update(publish=[f"mqtt://127.0.0.1:{broker.port}/soak"], publish_retry=True)
    if not sinks:
        sinks["json"] = "/dev/null"
    options = RunOptions(source=f"{camera.url}?timeout=2", sinks=sinks,
                         track=None if "track" in without else "bytetrack")
    run = Run(plan_from_options(options), log=lambda message: None)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(summary=run.execute(time.perf_counter())), daemon=True)
    began = time.monotonic()
    thread.start()
    polled = []
    if args.poll_stats and "serve" not in without:
        port = int(sinks["serve"].rsplit(":", 1)[1])

        def poll() -> None:
            while thread.is_alive() and not outcome:
                try:
                    polled.append(soak.web_client("stats", port, sinks["token"]).get("status"))
                except OSError:
                    polled.append(None)
                time.sleep(1 / args.poll_stats)

        threading.Thread(target=poll, daemon=True).start()
    time.sleep(args.warmup_minutes * 60)
    if not args.no_trace:
        tracemalloc.start(args.depth)
    first = soak.proc_sample(os.getpid())
    base = tracemalloc.take_snapshot() if not args.no_trace else None
    rows = []
    while time.monotonic() - began < args.minutes * 60:
        time.sleep(min(args.every, max(0.0, args.minutes * 60 - (time.monotonic() - began))))
        sample = soak.proc_sample(os.getpid())
        traced, _ = tracemalloc.get_traced_memory()
        rows.append({"t_s": round(time.monotonic() - began, 1), "rss_kb": sample["rss_kb"],
                     "rss_anon_kb": sample["rss_anon_kb"], "rss_file_kb": sample["rss_file_kb"],
                     "python_held_since_start_kb": round(traced / 1024, 1), "threads": sample["threads"],
                     "fds": sample["fds"]})
        print(json.dumps(rows[-1]), flush=True)
    last = tracemalloc.take_snapshot() if not args.no_trace else None
    run.stop_requested.set()
    thread.join(timeout=60)
    camera.stop()
    if broker is not None:
        broker.stop()
    growth = []
    if not args.no_trace:
        before, after = held_by_site(base, args.depth), held_by_site(last, args.depth)
        growth = sorted(((after[k][0] - before.get(k, [0, 0])[0], after[k][1] - before.get(k, [0, 0])[1], k)
                         for k in after), reverse=True)[:args.top]
    minutes = (rows[-1]["t_s"] - args.warmup_minutes * 60) / 60 if rows else 0
    frames = outcome.get("summary", {}).get("frames")
    report = {"minutes_traced": round(minutes, 2), "without": sorted(without), "frames": frames,
              "stats_fetches": len(polled), "stats_fetches_ok": polled.count(200),
              "rss_growth_kb": rows[-1]["rss_kb"] - first["rss_kb"] if rows else None,
              "anon_growth_kb": rows[-1]["rss_anon_kb"] - first["rss_anon_kb"] if rows else None,
              "python_held_growth_kb": rows[-1]["python_held_since_start_kb"] if rows else None,
              "rss_slope_kb_per_min": round(float(np.polyfit([r["t_s"] / 60 for r in rows],
                                                            [r["rss_kb"] for r in rows], 1)[0]), 1)
              if len(rows) >= 2 else None,
              "samples": rows,
              "sites": [{"site": k, "kb": round(size / 1024, 1), "blocks": count} for size, count, k in growth]}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
