"""COCO mAP through a maintained evaluator (faster-coco-eval, pycocotools-compatible).

No torch: ONNX and TFLite detectors are scored by the same code as checkpoints.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Dict, List, Sequence

import numpy as np


def coco_map(labels: List[str], gt_boxes: Sequence[np.ndarray], gt_classes: Sequence[np.ndarray],
             predictions: Sequence[Any]) -> Dict[str, Any]:
    """mAP@0.5:0.95, mAP@0.5 and per-class AP of `predictions` (one Detections per image,
    boxes in image pixels) against ground truth boxes (x1, y1, x2, y2) in pixels."""
    from faster_coco_eval import COCO, COCOeval_faster

    images, annotations, results = [], [], []
    for image_id, (boxes, classes, found) in enumerate(zip(gt_boxes, gt_classes, predictions), 1):
        images.append({"id": image_id})
        for box, cls in zip(np.asarray(boxes, np.float64), classes):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls) + 1,
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
        for box, score, cls in zip(np.asarray(found.boxes, np.float64), found.scores, found.classes):
            results.append({"image_id": image_id, "category_id": int(cls) + 1, "score": float(score),
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(labels)]
    if not annotations:
        raise ValueError("no ground-truth boxes to evaluate against")
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO({"images": images, "annotations": annotations, "categories": categories})
        if not results:
            return {"map50_95": 0.0, "map50": 0.0, "images": len(images), "objects": len(annotations),
                    "per_class": [{"label": n, "ap50_95": 0.0, "ap50": 0.0} for n in labels]}
        found = truth.loadRes(results)
        evaluation = COCOeval_faster(truth, found, iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = np.asarray(evaluation.eval["precision"])  # [iou thresholds, recall, class, area, max dets]
    per_class = []
    for k, name in enumerate(labels):
        curve = precision[:, :, k, 0, -1]
        valid = curve[curve > -1]
        at50 = precision[0, :, k, 0, -1]
        at50 = at50[at50 > -1]
        per_class.append({"label": name, "ap50_95": float(valid.mean()) if valid.size else 0.0,
                          "ap50": float(at50.mean()) if at50.size else 0.0})
    stats = evaluation.stats
    # COCO's size buckets (area < 32^2, < 96^2, larger px); -1 where a bucket holds no object
    by_size = {"small": float(stats[3]), "medium": float(stats[4]), "large": float(stats[5])}
    return {"map50_95": float(stats[0]), "map50": float(stats[1]), "images": len(images),
            "objects": len(annotations), "per_class": per_class, "map50_95_by_size": by_size}


def format_map_report(report: Dict[str, Any]) -> str:
    width = max(8, max(len(c["label"]) for c in report["per_class"]))
    lines = [f"mAP@0.5:0.95 {100 * report['map50_95']:.2f}   mAP@0.5 {100 * report['map50']:.2f}   "
             f"({report['images']} images, {report['objects']} objects)",
             f"{'class':<{width}}  AP@0.5:0.95  AP@0.5"]
    for c in report["per_class"]:
        lines.append(f"{c['label']:<{width}}  {100 * c['ap50_95']:10.2f}  {100 * c['ap50']:6.2f}")
    sizes = {k: v for k, v in report.get("map50_95_by_size", {}).items() if v >= 0}
    if sizes:
        lines.append("mAP@0.5:0.95 by object size (COCO areas): "
                     + ", ".join(f"{k} {100 * v:.2f}" for k, v in sizes.items()))
    return "\n".join(lines)
