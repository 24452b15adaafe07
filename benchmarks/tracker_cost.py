"""Tracker cost per frame and install weight (benchmarks/RESULTS.md, "Tracking").

Cost: each tracker (benchmarks/tracker_adapters.py) gets the same synthetic detections,
N objects (1, 10, 50) gliding and bouncing in a 640x480 frame with 1-pixel jitter and
scores 0.5-0.95, for 300 frames; the time of each update is taken after 30 warm-up
frames (median and p90, milliseconds). Trackers not importable here run in the venvs
given by --python (each a throwaway venv holding one package, see --install).

Install weight: --install DIR makes one venv per candidate package in DIR, installs
numpy and opencv-python-headless (what edgecnn's runtime already has), then the
package, and reports what the package added: megabytes of site-packages, the
distributions it pulled, and whether torch is among them.

    python benchmarks/tracker_cost.py --install /tmp/trk   (network; once)
    python benchmarks/tracker_cost.py --python /tmp/trk/venv-trackers/bin/python \\
        --python /tmp/trk/venv-norfair/bin/python
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

COUNTS = (1, 10, 50)
FRAMES, WARMUP = 300, 30
CANDIDATES = {"trackers": "trackers", "norfair": "norfair", "edgecnn-track": "scipy"}  # venv -> what to pip install


def scene(count: int, frames: int = FRAMES, seed: int = 0):
    """Per frame: boxes, scores, classes of `count` objects moving at constant speed."""
    rng = np.random.default_rng([seed, count])
    size = rng.uniform(20, 60, (count, 2))
    position = rng.uniform(size, np.array([640, 480]) - size)
    velocity = rng.uniform(-4, 4, (count, 2))
    scores = rng.uniform(0.5, 0.95, count)
    classes = rng.integers(0, 3, count)
    for _ in range(frames):
        position = position + velocity
        bounced = (position < size / 2) | (position > np.array([640, 480]) - size / 2)
        velocity[bounced] *= -1
        centre = position + rng.normal(0, 1, position.shape)
        yield np.concatenate([centre - size / 2, centre + size / 2], axis=1), scores, classes


def measure(names) -> dict:
    from tracker_adapters import make

    out = {}
    for name in names:
        out[name] = {}
        for count in COUNTS:
            step, times = make(name, 30.0), []
            for index, (boxes, scores, classes) in enumerate(scene(count)):
                began = time.perf_counter()
                step(boxes, scores, classes)
                if index >= WARMUP:
                    times.append((time.perf_counter() - began) * 1000)
            out[name][count] = {"median_ms": round(float(np.median(times)), 4),
                                "p90_ms": round(float(np.percentile(times, 90)), 4)}
    return out


def install(directory: Path) -> dict:
    report = {}
    for venv, package in CANDIDATES.items():
        path = directory / f"venv-{venv}"
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
        pip = [str(path / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run(pip + ["numpy", "opencv-python-headless"], check=True)
        site = next(path.glob("lib/python*/site-packages"))
        before = _size(site), _distributions(path)
        subprocess.run(pip + [package], check=True)
        after = _size(site), _distributions(path)
        added = sorted(set(after[1]) - set(before[1]))
        changed = sorted(f"{name} {before[1][name]} -> {after[1][name]}" for name in before[1]
                         if name in after[1] and after[1][name] != before[1][name])
        report[package] = {"added_mb": round((after[0] - before[0]) / 2**20, 1), "added": added,
                           "changed": changed, "torch": any(name.lower() == "torch" for name in after[1])}
    return report


def _size(site: Path) -> int:
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file())


def _distributions(venv: Path) -> dict:
    listing = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                             capture_output=True, text=True, check=True).stdout
    return {d["name"]: d["version"] for d in json.loads(listing)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", default=[], help="another interpreter whose trackers to time")
    parser.add_argument("--install", type=Path, default=None, metavar="DIR", help="measure install weight")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from tracker_adapters import available

    if args.child:
        print(json.dumps(measure([n for n in available() if n != "edgecnn-bytetrack"])))
        return 0
    if args.install:
        print(json.dumps({"install": install(args.install)}, indent=1))
        return 0
    results = measure([n for n in available()])
    for python in args.python:
        child = subprocess.run([python, __file__, "--child"], capture_output=True, text=True, check=True)
        results.update(json.loads(child.stdout))
    print(json.dumps({"cost": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
