"""ImageFolder datasets: DIR/train/<class>/*.png and DIR/val/<class>/*.png.

Every image is decoded once when the split is loaded, so a corrupt file is reported
by name before training starts instead of crashing it halfway.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np

from edgecnn.data.base import ClassificationSet, DataInfo
from edgecnn.core.errors import UserError
from edgecnn.core.files import is_image_file



def split_dir(root: Path, split: str) -> Path:
    candidates = [split] + (["test"] if split == "val" else ["val"] if split == "test" else [])
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    raise UserError(f"data directory {root} has no '{split}' folder (expected {root}/{split}/<class>/*.png)")


def class_names(root: Path) -> List[str]:
    """Class names from the train split's sub-folders, sorted for a stable order."""
    names = sorted(p.name for p in split_dir(root, "train").iterdir() if p.is_dir())
    if not names:
        raise UserError(f"{split_dir(root, 'train')} has no class folders")
    return names


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"cannot decode image {path} (corrupt or not an image)")
    if image.dtype != np.uint8:  # 16-bit PNGs and the like: scale to 8 bits
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
    return image


def load_folder(root: str, split: str, labels: Optional[List[str]] = None) -> ClassificationSet:
    base = Path(root)
    if not base.is_dir():
        raise UserError(f"data directory not found: {root}")
    labels = labels or class_names(base)
    directory = split_dir(base, split)
    images, targets = [], []
    present = sorted(p.name for p in directory.iterdir() if p.is_dir())
    unknown = [name for name in present if name not in labels]
    if unknown:
        raise UserError(f"{directory} has classes not in the training split: {', '.join(unknown)}")
    for index, name in enumerate(labels):
        class_dir = directory / name
        if not class_dir.is_dir():
            continue  # a class with no validation folder is allowed
        files = sorted(p for p in class_dir.iterdir() if is_image_file(p))
        if not files:
            raise UserError(f"class folder {class_dir} has no images")
        for path in files:
            images.append(read_image(path))
            targets.append(index)
    if not images:
        raise UserError(f"{directory} holds no images")
    colour = "gray" if all(img.ndim == 2 for img in images) else "rgb"
    info = DataInfo(name=str(base), labels=list(labels), color=colour,
                    default_imgsz=int(np.median([max(img.shape[:2]) for img in images])), hflip=True)
    return ClassificationSet(info, split, images, targets)


def write_folder(data: ClassificationSet, root: str) -> Path:
    """Write a split as DIR/<split>/<class>/NNNNNN.png (ImageFolder)."""
    base = Path(root) / data.split
    for index, (image, target) in enumerate(zip(data.images, data.targets)):
        folder = base / data.labels[int(target)]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:06d}.png"), image)
    return base
