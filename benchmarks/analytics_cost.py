"""Cost per frame of the analytics engine (edgecnn.runtime.analytics): zones, lines and
their events for a tracked stream (benchmarks/RESULTS.md, Zones and lines).

A 1280x720 frame holds Z zones (polygons of 4 to 8 corners) and L lines in fixed random
places, and N tracked objects gliding and bouncing through them with 1-pixel jitter,
so that enters, exits, dwells and crossings happen throughout; every zone has
min_time and dwell set (the most work per frame). Each configuration runs FRAMES
frames; the time of each `Analytics.update` call after WARMUP frames gives the median
and the 99th percentile, in milliseconds: wall-clock time, and the CPU time of the
calling thread (which leaves out the time other processes on a shared machine take
the core away). The goal: under 0.3 ms per frame at 10 zones, 10 lines and 20 objects.

    .venv/bin/python benchmarks/analytics_cost.py [--frames 5000]
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgecnn.runtime.analytics import Analytics, Line, Zone  # noqa: E402

WIDTH, HEIGHT = 1280, 720
CONFIGURATIONS = ((1, 1, 5), (10, 10, 20), (10, 10, 50), (20, 20, 20))  # zones, lines, objects
WARMUP = 100
LABELS = ["person", "car", "bicycle"]
FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile",
                     "neon", "asimd")


def cpu_description() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model") and value.strip():
                model = value.strip()
            elif key in ("flags", "Features"):
                flags.update(value.split())
    except OSError:
        pass
    present = [flag for flag in FLAGS_OF_INTEREST if flag in flags]
    return f"{model}; flags: {' '.join(present) or 'none of ' + ', '.join(FLAGS_OF_INTEREST)}"


def layout(zones: int, lines: int, seed: int = 0):
    """Convex polygons (corners on a jittered circle) and segments at random places."""
    rng = np.random.default_rng(seed)
    out_zones, out_lines = [], []
    for k in range(zones):
        corners = int(rng.integers(4, 9))
        centre = rng.uniform([150, 150], [WIDTH - 150, HEIGHT - 150])
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
        radius = rng.uniform(60, 140)
        points = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        out_zones.append(Zone(f"zone{k}", [tuple(p) for p in points], min_time=0.2, dwell=2.0, dwell_repeat=True))
    for k in range(lines):
        start = rng.uniform([50, 50], [WIDTH - 50, HEIGHT - 50])
        angle, length = rng.uniform(0, np.pi), rng.uniform(100, 500)
        end = np.clip(start + length * np.array([np.cos(angle), np.sin(angle)]), 0, [WIDTH, HEIGHT])
        out_lines.append(Line(f"line{k}", tuple(start), tuple(end), labels=["person", "car"] if k % 2 else ()))
    return out_zones, out_lines


def scene(objects: int, frames: int, seed: int = 0):
    """Per frame: boxes, classes, track ids of `objects` tracks at 30 fps."""
    rng = np.random.default_rng([seed, objects])
    size = rng.uniform([30, 60], [90, 200], (objects, 2))
    position = rng.uniform(size, np.array([WIDTH, HEIGHT]) - size)
    velocity = rng.uniform(-6, 6, (objects, 2))
    classes = rng.integers(0, len(LABELS), objects)
    ids = np.arange(1, objects + 1)
    for _ in range(frames):
        position = position + velocity
        bounced = (position < size / 2) | (position > np.array([WIDTH, HEIGHT]) - size / 2)
        velocity[bounced] *= -1
        centre = position + rng.normal(0, 1, position.shape)
        yield np.concatenate([centre - size / 2, centre + size / 2], axis=1), classes, ids


def measure(zones: int, lines: int, objects: int, frames: int) -> dict:
    zone_list, line_list = layout(zones, lines)
    analytics = Analytics(zone_list, line_list, frame_size=(WIDTH, HEIGHT))
    wall, cpu, events = [], [], 0
    for index, (boxes, classes, ids) in enumerate(scene(objects, frames)):
        began, began_cpu = time.perf_counter(), time.thread_time()
        frame = analytics.update(boxes, classes, ids, LABELS, index / 30.0, index)
        elapsed, elapsed_cpu = time.perf_counter() - began, time.thread_time() - began_cpu
        events += len(frame.events)
        if index >= WARMUP:
            wall.append(elapsed * 1000)
            cpu.append(elapsed_cpu * 1000)
    return {"median_ms": float(np.median(wall)), "p99_ms": float(np.percentile(wall, 99)),
            "cpu_median_ms": float(np.median(cpu)), "cpu_p99_ms": float(np.percentile(cpu, 99)), "events": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=5000, help="frames per configuration (default 5000)")
    arguments = parser.parse_args()
    print(f"CPU: {cpu_description()}")
    print(f"Python {platform.python_version()}, numpy {np.__version__}; {arguments.frames} frames per row, "
          f"the first {WARMUP} not timed")
    print(f"load average before: {_load()}")
    print("| zones | lines | objects | median ms/frame | p99 ms/frame | CPU median ms | CPU p99 ms | events |")
    print("|---|---|---|---|---|---|---|---|")
    for zones, lines, objects in CONFIGURATIONS:
        r = measure(zones, lines, objects, arguments.frames)
        print(f"| {zones} | {lines} | {objects} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} | {r['cpu_median_ms']:.3f} | "
              f"{r['cpu_p99_ms']:.3f} | {r['events']} |")
    print(f"load average after: {_load()}")


def _load() -> str:
    """The machine's load average (1, 5, 15 min): other work sharing the cores."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
