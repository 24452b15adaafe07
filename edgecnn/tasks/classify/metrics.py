"""Classification metrics in numpy: shared by every backend's evaluation (no torch)."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np


def confusion_matrix(targets: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    targets = np.asarray(targets, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    flat = targets * num_classes + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_report(targets: Sequence[int], predictions: Sequence[int],
                          labels: List[str]) -> Dict[str, Any]:
    """Top-1 accuracy plus per-class precision, recall, F1 and support."""
    matrix = confusion_matrix(targets, predictions, len(labels))
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(0)
    actual = matrix.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(actual > 0, true_positive / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_class = [{"label": label, "precision": float(p), "recall": float(r), "f1": float(f),
                  "support": int(s)} for label, p, r, f, s in zip(labels, precision, recall, f1, actual)]
    total = int(matrix.sum())
    return {"top1": float(true_positive.sum() / total) if total else 0.0, "images": total,
            "per_class": per_class, "confusion": matrix.tolist(), "labels": list(labels)}


def format_report(report: Dict[str, Any]) -> str:
    """A fixed-width table for the terminal."""
    width = max(8, max(len(c["label"]) for c in report["per_class"]))
    lines = [f"top-1 accuracy: {100 * report['top1']:.2f}% on {report['images']} images",
             f"{'class':<{width}}  precision  recall     f1  support"]
    for c in report["per_class"]:
        lines.append(f"{c['label']:<{width}}  {100 * c['precision']:8.2f}%  {100 * c['recall']:5.2f}%  "
                     f"{100 * c['f1']:5.2f}%  {c['support']:7d}")
    return "\n".join(lines)
