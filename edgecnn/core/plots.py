"""Figures written by evaluation (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Union

import numpy as np

from edgecnn.core.atomic import atomic_path


def save_confusion_png(matrix: np.ndarray, labels: List[str], path: Union[str, Path], title: str) -> None:
    import matplotlib

    matrix = np.asarray(matrix)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.45 * len(labels) + 2.0)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    if len(labels) <= 30:
        for (row, col), value in np.ndenumerate(matrix):
            if value:
                axes.text(col, row, str(value), ha="center", va="center", fontsize=8,
                          color="white" if value > threshold else "black")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120, format="png")
    plt.close(figure)


def draw_detections(image: np.ndarray, detections, labels: List[str], min_score: float = 0.3,
                    truth_boxes=None) -> np.ndarray:
    """Boxes with label and score drawn onto a copy of an OpenCV image (truth in white)."""
    import cv2

    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    palette = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72)]
    if truth_boxes is not None:
        for box in truth_boxes:
            cv2.rectangle(canvas, tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:]), (255, 255, 255), 1)
    for box, score, cls in zip(detections.boxes, detections.scores, detections.classes):
        if score < min_score:
            continue
        colour = palette[int(cls) % len(palette)]
        p1, p2 = tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:])
        cv2.rectangle(canvas, p1, p2, colour, 1)
        cv2.putText(canvas, f"{labels[int(cls)]} {score:.2f}", (p1[0], max(8, p1[1] - 2)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.3, colour, 1, cv2.LINE_AA)
    return canvas


def save_detections_png(images, truth_boxes, truth_classes, found, labels: List[str],
                        path: Union[str, Path]) -> None:
    """A grid of images: ground truth in white, predictions (score >= 0.3) in colour."""
    import cv2

    tiles = [draw_detections(img, det, labels, truth_boxes=boxes) for img, boxes, det in zip(images, truth_boxes, found)]
    size = max(max(t.shape[:2]) for t in tiles)
    tiles = [cv2.resize(t, (size, size)) for t in tiles]
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[i:i + 4]) for i in range(0, len(tiles), 4)])
    ok, encoded = cv2.imencode(".png", grid)
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


def save_segmentation_png(images, truths, predictions, labels: List[str], colours, path: Union[str, Path],
                          title: str = "") -> None:
    """One row per image: the image, its ground truth and the prediction (each label in
    its BGR colour from `colours`; ignored pixels white), with a legend and title on top."""
    import cv2

    table = np.zeros((256, 1, 3), np.uint8)
    table[:len(colours), 0] = np.asarray(colours, np.uint8)
    table[255, 0] = (255, 255, 255)
    size = max(max(image.shape[:2]) for image in images)
    rows = []
    for image, truth, predicted in zip(images, truths, predictions):
        tiles = [image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR),
                 cv2.applyColorMap(truth, table), cv2.applyColorMap(predicted, table)]
        rows.append(np.hstack([cv2.resize(t, (size, size), interpolation=cv2.INTER_NEAREST) for t in tiles]))
    grid = np.vstack(rows)
    header = np.full((44, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(header, f"{title}   (image | truth | prediction)", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1, cv2.LINE_AA)
    x = 4
    for index, label in enumerate(labels):
        colour = tuple(int(c) for c in table[index, 0])
        cv2.rectangle(header, (x, 26), (x + 12, 38), colour, -1)
        cv2.rectangle(header, (x, 26), (x + 12, 38), (0, 0, 0), 1)
        cv2.putText(header, label, (x + 16, 37), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += 24 + 8 * len(label)
    ok, encoded = cv2.imencode(".png", np.vstack([header, grid]))
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())


def pareto_front(points: List[dict]) -> List[dict]:
    """The points no other point beats on both latency (lower) and accuracy (higher)."""
    return [p for p in points if not any(
        q["latency_ms"] <= p["latency_ms"] and q["accuracy"] >= p["accuracy"] and
        (q["latency_ms"], q["accuracy"]) != (p["latency_ms"], p["accuracy"]) for q in points)]


def save_pareto_png(points: List[dict], path: Union[str, Path], title: str) -> None:
    """Accuracy against measured latency, marker area proportional to file size, the
    Pareto front joined by a line. points: name, accuracy (%), latency_ms, size_kb."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    largest = max(p["size_kb"] for p in points)
    for index, point in enumerate(points):
        axes.scatter(point["latency_ms"], point["accuracy"], s=40 + 600 * point["size_kb"] / largest, alpha=0.6)
        axes.annotate(f"{point['name']} ({point['size_kb']:.0f} KB)", (point["latency_ms"], point["accuracy"]),
                      textcoords="offset points", xytext=(8, 12 * (index % 3) - 12), fontsize=8)  # staggered
    front = sorted(pareto_front(points), key=lambda p: p["latency_ms"])
    axes.plot([p["latency_ms"] for p in front], [p["accuracy"] for p in front], "k--", linewidth=1,
              label="Pareto front")
    axes.set_xlabel("latency (ms, median)")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    plt.close(figure)
