"""Where a shapes detector's mAP@0.5 goes: on fresh synthetic scenes (the val split drawn
with another seed), the objects it misses (no box of their class at IoU >= 0.5), broken
down by how much of the shape is visible and by size, and its confident false positives
(score >= 0.3) by kind. The generator knows each object's visible fraction, so occlusion
can be counted exactly.

    python benchmarks/investigations/detector_errors.py edgecnn/assets/shapes_detector.pt [MORE.pt|.onnx|.tflite ...] --count 1000
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

import numpy as np
import torch

from edgecnn.data.detection import DETECTION_SHAPES, DetectionSet, shapes_scene_visibility
from edgecnn.tasks.detect.metrics import coco_map
from edgecnn.tasks.detect.loss import pairwise_iou
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: fresh_scenes
from fresh_scenes import file_detections  # noqa: E402

VISIBLE_BINS = [(0.4, 0.6), (0.6, 0.8), (0.8, 0.999), (0.999, 1.01)]
SIZE_BINS = [(0, 24), (24, 48), (48, 96), (96, 193)]  # larger box side, pixels at 192x192
CONFIDENT = 0.3


def checkpoint_detections(path: str, scenes: DetectionSet) -> tuple:
    from edgecnn.training.checkpoint import load_model
    from edgecnn.training.evaluate import torch_predictor
    from edgecnn.tasks.detect.training import predict_detections

    model, card, _ = load_model(path)
    return card, predict_detections(torch_predictor(model), scenes, card, list(range(len(scenes))))


def error_report(scenes: DetectionSet, visible: list, found: list) -> dict:
    """Missed objects per visibility and size bin; confident false positives per kind."""
    missed_by_visible = {b: [0, 0] for b in VISIBLE_BINS}
    missed_by_size = {b: [0, 0] for b in SIZE_BINS}
    false_positives = {"wrong class on a found object": 0, "piece of an object of its class": 0, "other": 0}
    for boxes, classes, fractions, detections in zip(scenes.boxes, scenes.classes, visible, found):
        iou = pairwise_iou(torch.from_numpy(boxes), torch.from_numpy(detections.boxes.reshape(-1, 4))).numpy()
        same = classes[:, None] == detections.classes[None, :]
        hit = ((iou >= 0.5) & same).any(1)
        for fraction, side, found_it in zip(fractions, (boxes[:, 2:] - boxes[:, :2]).max(1), hit):
            for bins, value in ((missed_by_visible, fraction), (missed_by_size, side)):
                for low, high in bins:
                    if low <= value < high:
                        bins[(low, high)][0] += 1
                        bins[(low, high)][1] += int(not found_it)
        for d in np.nonzero(detections.scores >= CONFIDENT)[0]:
            if ((iou[:, d] >= 0.5) & same[:, d]).any():
                continue  # a true positive (or a duplicate of one)
            if ((iou[:, d] >= 0.5) & ~same[:, d]).any():
                false_positives["wrong class on a found object"] += 1
            elif ((iou[:, d] >= 0.1) & same[:, d]).any():
                false_positives["piece of an object of its class"] += 1
            else:
                false_positives["other"] += 1
    return {"visible": missed_by_visible, "size": missed_by_size, "false_positives": false_positives}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help=".pt checkpoints or .onnx/.tflite files")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1, help="scene seed (the project's splits use 0)")
    args = parser.parse_args()
    drawn = [shapes_scene_visibility(args.seed, "val", i) for i in range(args.count)]
    scenes = DetectionSet("shapes", "val", list(DETECTION_SHAPES), [d[0] for d in drawn], [d[1] for d in drawn],
                          [d[2] for d in drawn])
    for path in args.models:
        card, found = (checkpoint_detections if path.endswith(".pt") else file_detections)(path, scenes)
        with contextlib.redirect_stdout(io.StringIO()):  # the COCO evaluator prints its summary
            scores = coco_map(card.labels, scenes.boxes, scenes.classes, found)
        report = error_report(scenes, [d[3] for d in drawn], found)
        per_class = ", ".join(f"{c['label']} {100 * c['ap50']:.2f}" for c in scores["per_class"])
        print(f"\n{path}: {args.count} scenes (seed {args.seed}), mAP@0.5:0.95 {100 * scores['map50_95']:.2f}, "
              f"mAP@0.5 {100 * scores['map50']:.2f} ({per_class})")
        print("| objects | count | missed |\n|---|---|---|")
        for name, bins in (("visible", report["visible"]), ("side px", report["size"])):
            for (low, high), (count, missed) in bins.items():
                span = "all" if (name, low) == ("visible", 0.999) else f"{low:g}-{high:g}"
                print(f"| {name} {span} | {count} | {missed} |")
        kinds = ", ".join(f"{kind} {n}" for kind, n in report["false_positives"].items())
        print(f"false positives scoring >= {CONFIDENT}: {kinds}")


if __name__ == "__main__":
    main()
