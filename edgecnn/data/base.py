"""The classification dataset interface shared by training and evaluation.

A dataset is an indexable set of (OpenCV image, class index) pairs plus the facts a
model card needs about it. It holds no torch: ONNX and TFLite models are evaluated
on the same objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class DataInfo:
    """What the data says about the model that should consume it."""

    name: str
    labels: List[str]
    color: str  # "gray", "rgb" (images stored as OpenCV BGR, fed as RGB) ...
    default_imgsz: int
    hflip: bool  # whether a horizontal flip keeps the label true
    extra: dict = field(default_factory=dict)


class ClassificationSet:
    """An in-memory list of images and labels for one split."""

    def __init__(self, info: DataInfo, split: str, images: Sequence[np.ndarray],
                 targets: Sequence[int]) -> None:
        assert len(images) == len(targets)
        self.info = info
        self.split = split
        self.images = list(images)
        self.targets = np.asarray(targets, dtype=np.int64)

    @property
    def labels(self) -> List[str]:
        return self.info.labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, int]:
        return self.images[index], int(self.targets[index])

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.targets, minlength=len(self.labels))

    def take(self, indices: Sequence[int]) -> "ClassificationSet":
        return ClassificationSet(self.info, self.split, [self.images[i] for i in indices], self.targets[list(indices)])


def random_subset(data, count: Optional[int], seed: int):
    """A fixed random subset of `count` samples (all of them when count is None);
    works for any dataset with len() and take()."""
    if not count:
        return data
    return data.take(np.random.default_rng(seed).permutation(len(data))[:count].tolist())
