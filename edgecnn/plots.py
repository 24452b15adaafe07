"""Figures written by evaluation (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Union

import numpy as np

from edgecnn.atomic import atomic_path


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
