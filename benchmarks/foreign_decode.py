"""Decode and NMS time of an Ultralytics-layout output [1, 84, 8400] (80 classes, 640 px)
through the runtime's one path (yolo-v8 head, then the shared threshold and NMS), at
conf 0.25. The output is synthetic with a realistic score spread: most anchors far below
the threshold, a few hundred candidates around objects (clusters of overlapping boxes).

    python benchmarks/foreign_decode.py [--runs 2000]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from edgecnn.core.card import ModelCard
from edgecnn.tasks.detect.task import detect


def synthetic_output(rng: np.random.Generator, objects: int = 20, per_object: int = 15) -> np.ndarray:
    anchors, classes = 8400, 80
    table = np.empty((4 + classes, anchors), np.float32)
    table[0:2] = rng.uniform(0, 640, (2, anchors))
    table[2:4] = rng.uniform(8, 200, (2, anchors))
    table[4:] = 1 / (1 + np.exp(-rng.normal(-7, 1.5, (classes, anchors))))
    chosen = rng.choice(anchors, objects * per_object, replace=False).reshape(objects, per_object)
    for cluster in chosen:
        centre, size, cls = rng.uniform(50, 590, 2), rng.uniform(20, 150, 2), rng.integers(classes)
        table[0:2, cluster] = (centre[:, None] + rng.normal(0, 3, (2, per_object))).astype(np.float32)
        table[2:4, cluster] = (size[:, None] + rng.normal(0, 3, (2, per_object))).astype(np.float32)
        table[4 + cls, cluster] = rng.uniform(0.3, 0.95, per_object)
    return table[None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    card = ModelCard(task="detect", labels=[str(i) for i in range(80)], input_size=(640, 640), mean=(0,), std=(255,),
                     head={"format": "yolo-v8", "boxes": "pixels"})
    outputs = [synthetic_output(np.random.default_rng(seed)) for seed in range(8)]
    for output in outputs:  # warm-up
        detect(card, [output], (480, 640), conf=0.25)
    times, kept = [], []
    for i in range(args.runs):
        output = outputs[i % len(outputs)]
        start = time.perf_counter()
        found = detect(card, [output], (480, 640), conf=0.25)
        times.append((time.perf_counter() - start) * 1000)
        kept.append(len(found))
    times = np.array(times)
    print(json.dumps({"output": [1, 84, 8400], "conf": 0.25, "runs": args.runs,
                      "median_ms": round(float(np.median(times)), 4), "p90_ms": round(float(np.percentile(times, 90)), 4),
                      "p99_ms": round(float(np.percentile(times, 99)), 4),
                      "detections_per_frame": round(float(np.mean(kept)), 1)}))


if __name__ == "__main__":
    main()
