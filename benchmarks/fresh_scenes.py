"""Score detector files (.onnx, .tflite) on fresh synthetic-shapes scenes: the val
split drawn with another seed, so none of them was seen in training, calibration or
the choice of a recipe. On 1000 scenes an int8 drop has less sampling noise than on
the 300 held-out scenes the conversion gate uses: there, two quantizations of the
bundled detector read 0.54 and 0.91 points, and on 1000 fresh scenes 1.12 and 0.60
(benchmarks/RESULTS.md).

    python benchmarks/fresh_scenes.py --count 1000 runs/compress/shapes-v6-boxf/*.tflite ...
"""
from __future__ import annotations

import argparse

from converters.parity import backend_predictor
from edgecnn.data.detection import load_shapes_detection
from edgecnn.tasks.detect.metrics import coco_map
from edgecnn.runtime.backends import open_backend
from edgecnn.tasks.detect.training import predict_detections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1, help="scene seed (the project's splits use 0)")
    args = parser.parse_args()
    scenes = load_shapes_detection("val", seed=args.seed, count=args.count)
    print(f"| file | mAP@0.5:0.95 | mAP@0.5 | ({args.count} scenes, seed {args.seed}) |")
    print("|---|---|---|---|")
    for path in args.files:
        card, found = file_detections(path, scenes)
        report = coco_map(card.labels, scenes.boxes, scenes.classes, found)
        print(f"| {path} | {100 * report['map50_95']:.2f} | {100 * report['map50']:.2f} | |", flush=True)


def file_detections(path: str, scenes) -> tuple:
    """(card, detections per scene) of a model file, run as the conversion gate runs it."""
    backend = open_backend(path, threads=2)
    predict = backend_predictor(backend)
    return backend.card, predict_detections(predict, scenes, backend.card, list(range(len(scenes))))


if __name__ == "__main__":
    main()
