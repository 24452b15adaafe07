"""Segmentation metrics in numpy (no torch: ONNX and TFLite segmenters are scored by the
same code as checkpoints).

One confusion matrix is accumulated over every pixel of the whole split (ignored
pixels left out), and IoU is read from it per label: TP / (TP + FP + FN). This is
the Pascal VOC / Cityscapes definition (dataset-level, not an average of per-image
IoUs, which small objects would swing). mIoU averages the labels that occur in the
ground truth or the predictions; pixel accuracy is the matrix's trace over its sum.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from edgecnn.tasks.classify.metrics import confusion_matrix

IGNORE = 255


class ConfusionMatrix:
    """counts[true, predicted] over all the pixels added."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.counts = np.zeros((num_classes, num_classes), np.int64)

    def add(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        if truth.shape != predicted.shape:
            raise ValueError(f"prediction {predicted.shape} and ground truth {truth.shape} differ in size")
        keep = truth != IGNORE
        self.counts += confusion_matrix(truth[keep], np.minimum(predicted[keep], self.num_classes - 1),
                                        self.num_classes)

    def merge(self, other: "ConfusionMatrix") -> None:
        self.counts += other.counts


def iou_report(counts: np.ndarray, labels: List[str]) -> Dict[str, Any]:
    """Per-label IoU, mIoU and pixel accuracy from a confusion matrix."""
    counts = np.asarray(counts, np.float64)
    true_positive = np.diag(counts)
    actual, predicted = counts.sum(1), counts.sum(0)
    union = actual + predicted - true_positive
    present = union > 0
    iou = np.where(present, true_positive / np.maximum(union, 1), np.nan)
    total = counts.sum()
    per_class = [{"label": label, "iou": None if np.isnan(v) else float(v), "pixels": int(a),
                  "predicted": int(p)} for label, v, a, p in zip(labels, iou, actual, predicted)]
    return {"miou": float(np.nanmean(iou)) if present.any() else 0.0,
            "pixel_accuracy": float(true_positive.sum() / total) if total else 0.0,
            "pixels": int(total), "per_class": per_class, "confusion": counts.astype(np.int64).tolist(),
            "labels": list(labels)}


def format_iou_report(report: Dict[str, Any]) -> str:
    width = max(8, max(len(c["label"]) for c in report["per_class"]))
    lines = [f"mIoU {100 * report['miou']:.2f}   pixel accuracy {100 * report['pixel_accuracy']:.2f}   "
             f"({report.get('images', '?')} images, {report['pixels']:,} pixels scored)",
             f"{'class':<{width}}     IoU   pixels (truth)  pixels (predicted)"]
    for c in report["per_class"]:
        iou = "     -" if c["iou"] is None else f"{100 * c['iou']:6.2f}"
        lines.append(f"{c['label']:<{width}}  {iou}  {c['pixels']:14,d}  {c['predicted']:18,d}")
    return "\n".join(lines)
