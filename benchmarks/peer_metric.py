"""Score a detector checkpoint on the held-out shapes scenes with two AP definitions:
the COCO evaluator that `edgecnn eval` uses, and Ultralytics' own validation code
(`BaseValidator.match_predictions` and `ap_per_class`), which produced the peer's
figures in the detection issue. The two differ in how they read the precision-recall
curve: COCO takes the precision at 101 recall points, so a class with one missed object
scores at most 100/101; Ultralytics integrates a curve that it extends to recall 1.00
with a straight line, which costs a missed object less.

Needs Ultralytics' Python code only: `pip install --no-deps ultralytics` (its package
metadata lookup of torchvision, which cannot be installed beside this torch, is
answered here; torchvision itself is never imported by the two functions used).

    python benchmarks/peer_metric.py edgecnn/assets/shapes_detector.pt [MORE.pt ...]
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
from types import SimpleNamespace

import numpy as np
import torch

from edgecnn.training.checkpoint import load_model
from edgecnn.data.detection import load_detection
from edgecnn.tasks.detect.metrics import coco_map
from edgecnn.training.evaluate import torch_predictor
from edgecnn.tasks.detect.training import predict_detections


@contextlib.contextmanager
def torchvision_metadata():
    """Answer Ultralytics' package-metadata lookup of torchvision (whose PyPI build needs
    CUDA torch libraries and cannot be installed beside this CPU torch). The two
    functions used here never import torchvision itself; its validator class does
    (see peer_train.torchvision_stand_in)."""
    real_version = importlib.metadata.version
    importlib.metadata.version = lambda name: "0.28.0" if name == "torchvision" else real_version(name)
    try:
        yield
    finally:
        importlib.metadata.version = real_version


def import_ultralytics():
    with torchvision_metadata():
        from ultralytics.engine.validator import BaseValidator
        from ultralytics.utils.metrics import ap_per_class, box_iou
    return BaseValidator, ap_per_class, box_iou


def ultralytics_map(val, found) -> tuple:
    """(mAP@0.5, mAP@0.5:0.95) of `found` by Ultralytics' validation code."""
    BaseValidator, ap_per_class, box_iou = import_ultralytics()
    matcher = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))
    correct, scores, predicted, truth = [], [], [], []
    for gt_boxes, gt_classes, detections in zip(val.boxes, val.classes, found):
        order = np.argsort(-detections.scores, kind="stable")  # the matcher expects descending confidence
        boxes, classes = detections.boxes[order], detections.classes[order]
        iou = box_iou(torch.as_tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4),
                      torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        correct.append(BaseValidator.match_predictions(matcher, torch.as_tensor(classes),
                                                       torch.as_tensor(np.asarray(gt_classes)), iou).numpy())
        scores.append(detections.scores[order])
        predicted.append(classes)
        truth.append(np.asarray(gt_classes))
    ap = ap_per_class(np.concatenate(correct), np.concatenate(scores), np.concatenate(predicted),
                      np.concatenate(truth))[5]  # (classes, 10 IoU thresholds)
    return float(ap[:, 0].mean()), float(ap.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(2)
    val = load_detection("shapes", "val")
    print("| checkpoint | COCO mAP@0.5 | Ultralytics mAP@0.5 | COCO mAP@0.5:0.95 | Ultralytics mAP@0.5:0.95 |")
    print("|---|---|---|---|---|")
    for path in args.checkpoints:
        model, card, _ = load_model(path)
        found = predict_detections(torch_predictor(model), val, card, list(range(len(val))))
        coco = coco_map(card.labels, val.boxes, val.classes, found)
        peer50, peer50_95 = ultralytics_map(val, found)
        print(f"| {path} | {100 * coco['map50']:.2f} | {100 * peer50:.2f} | "
              f"{100 * coco['map50_95']:.2f} | {100 * peer50_95:.2f} |", flush=True)


if __name__ == "__main__":
    main()
