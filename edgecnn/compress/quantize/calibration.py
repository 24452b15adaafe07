"""Calibration images for int8: from a dataset split or a directory/glob of frames, always
through the training preprocessing, with warnings for sets too small or unlike the
training images."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.task import get_task
from edgecnn.core.files import is_image_file


# Below this many images the activation ranges of a small CNN visibly depend on which
# images were drawn (measured: digits drop spreads from 0.1 to 0.7 points at 16).
MIN_CALIBRATION_IMAGES = 64


@dataclass
class CalibrationCheck:
    """What is suspicious about a calibration set, as user-facing warnings."""

    images: int
    warnings: List[str] = field(default_factory=list)


def check_calibration(calibration: np.ndarray, reference: np.ndarray,
                      minimum: int = MIN_CALIBRATION_IMAGES) -> CalibrationCheck:
    """Warn when there are too few calibration images, or when their preprocessed
    statistics differ from the training images' (another camera, another colour order,
    another normalisation: the scales would be computed for the wrong data)."""
    check = CalibrationCheck(images=len(calibration))
    if len(calibration) < minimum:
        check.warnings.append(f"only {len(calibration)} calibration images; use at least {minimum} "
                              "for stable int8 ranges")
    cal_mean, cal_std = float(calibration.mean()), float(calibration.std())
    ref_mean, ref_std = float(reference.mean()), float(reference.std())
    if abs(cal_mean - ref_mean) > 0.25 * ref_std or not 0.67 < cal_std / max(ref_std, 1e-6) < 1.5:
        check.warnings.append(
            f"calibration images differ from the training images after preprocessing (mean {cal_mean:.3f} vs "
            f"{ref_mean:.3f}, std {cal_std:.3f} vs {ref_std:.3f}): the int8 ranges may not fit real inputs")
    return check


def training_images(card: ModelCard, data_spec: str, split: str, count: Optional[int], seed: int = 0
                    ) -> List[np.ndarray]:
    """Up to `count` images (a seeded random subset) of a dataset split, as OpenCV arrays."""
    images = get_task(card.task).training().load_images(data_spec, split)
    if not len(images):
        raise UserError(f"no {split} images in {data_spec}: calibration needs real images")
    if count is not None and count < len(images):
        chosen = np.random.default_rng(seed).choice(len(images), count, replace=False)
        images = [images[i] for i in sorted(chosen)]
    return list(images)


def image_files(spec: str) -> List[str]:
    """Image files directly in a directory or matching a glob ([] for a dataset spec)."""
    import glob
    import os

    pattern = os.path.join(spec, "*") if os.path.isdir(spec) else spec
    return sorted(f for f in glob.glob(pattern) if is_image_file(f))


def load_images(spec: str, card: ModelCard, count: Optional[int], seed: int = 0) -> List[np.ndarray]:
    """Calibration images from a dataset spec (its train split), or a directory/glob of
    image files (e.g. frames saved from the deployment camera)."""
    import os

    import cv2

    files = image_files(spec)
    if not files:
        if os.path.isdir(spec) and not any(os.scandir(spec)):
            raise UserError(f"no calibration images in {spec}")
        return training_images(card, spec, "train", count, seed)
    if count is not None and count < len(files):
        files = [files[i] for i in sorted(np.random.default_rng(seed).choice(len(files), count, replace=False))]
    images = []
    for file in files:
        image = cv2.imread(file, cv2.IMREAD_UNCHANGED)
        if image is None:
            raise UserError(f"{file}: not a readable image")
        images.append(image)
    return images
