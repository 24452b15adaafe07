"""Streaming cost of a segmenter's results, for benchmarks/RESULTS.md ("Shapes segmenter").

1. JSON size: the result record (edgecnn.runtime.schema, as `edgecnn run --json` writes
   it) per frame of the demo scene (the moving synthetic shapes, 30 FPS) with
   `--masks rle`, `contours` and `none`: mean and maximum bytes per frame.
2. Overlay cost at 640x480: `edgecnn.annotate(frame, result)` (a copy of the frame with
   the result drawn) against the same call with an empty result (the copy alone), over
   the same frames in interleaved rounds; the difference is what the masks add
   (scaling the label map to the frame included).

    python benchmarks/segment_stream.py MODEL.tflite [--frames 300] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402


class Nothing:
    """A result that draws nothing: the baseline of the overlay timing."""

    def draw(self, canvas):
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from edgecnn.runtime.annotate import annotate
    from edgecnn.runtime.demo import DemoCapture
    from edgecnn.runtime.model import load
    from edgecnn.runtime.schema import encode, records

    model = load(args.model, threads=args.threads, log=lambda message: None)
    demo = DemoCapture(fps=30.0)
    frames = [demo.scene(t) for t in range(args.frames)]
    results = [model.predict(frame, frame_index=t) for t, frame in enumerate(frames)]
    sizes = {}
    for form in ("rle", "contours", "none"):
        lengths = [sum(len(encode(r)) + 1 for r in records(result, masks=form)) for result in results]
        sizes[form] = {"mean_bytes": round(statistics.mean(lengths), 1), "max_bytes": max(lengths)}

    wide = [cv2.resize(frame, (640, 480)) for frame in frames]
    wide_results = [model.predict(frame) for frame in wide]
    nothing = Nothing()
    per_round = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for frame in wide:
            annotate(frame, nothing)
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        for frame, result in zip(wide, wide_results):
            result._frame_map = None  # the map at frame size is counted too: drawing is its first use
            annotate(frame, result)
        drawn = time.perf_counter() - started
        per_round.append((drawn - baseline) / len(wide) * 1000)
    summary = {"model": args.model, "frames": args.frames, "source": f"demo {demo.size}x{demo.size} at 30 FPS",
               "json": sizes, "overlay_640x480_ms": {"median": round(statistics.median(per_round), 3),
                                                     "rounds": [round(v, 3) for v in per_round]},
               "labels_present_per_frame": round(statistics.mean(len(r) for r in results), 2)}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
