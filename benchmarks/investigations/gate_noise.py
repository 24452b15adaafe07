"""How much sampling noise the conversion gate's 300 held-out shapes scenes leave in an
int8 drop: the drop of CANDIDATE against REFERENCE (model files) on the whole split,
then on bootstrap resamples of its scenes (drawn with replacement, paired: the same
scenes for both files).

    python benchmarks/investigations/gate_noise.py runs/compress/shapes-v6/shapes_detector-fp32.tflite runs/compress/shapes-v5-boxf/shapes_detector-int8.tflite --draws 200
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

import numpy as np

from edgecnn.data.detection import load_detection
from edgecnn.tasks.detect.metrics import coco_map
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: fresh_scenes
from fresh_scenes import file_detections  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference")
    parser.add_argument("candidate")
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()
    scenes = load_detection("shapes", "val")
    card, reference = file_detections(args.reference, scenes)
    _, candidate = file_detections(args.candidate, scenes)

    def score(indices, found) -> float:
        with contextlib.redirect_stdout(io.StringIO()):  # the COCO evaluator prints its summary
            return 100 * coco_map(card.labels, [scenes.boxes[i] for i in indices],
                                  [scenes.classes[i] for i in indices], [found[i] for i in indices])["map50_95"]

    every = range(len(scenes))
    print(f"drop on all {len(scenes)} scenes: {score(every, reference) - score(every, candidate):.2f}")
    rng = np.random.default_rng(0)
    drops = []
    for _ in range(args.draws):
        indices = rng.integers(0, len(scenes), len(scenes))
        drops.append(score(indices, reference) - score(indices, candidate))
    low, high = np.percentile(drops, [5, 95])
    print(f"{args.draws} bootstrap draws: drop {np.mean(drops):.2f} +- {np.std(drops):.2f} (5-95%: {low:.2f}-{high:.2f})")


if __name__ == "__main__":
    main()
