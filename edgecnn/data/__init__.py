"""Datasets by name or path: 'digits' (bundled real handwriting), 'shapes'
(deterministic synthetic), or an ImageFolder directory."""
from __future__ import annotations

from typing import List, Optional

from edgecnn.data.base import ClassificationSet, DataInfo
from edgecnn.core.errors import UserError

SPLITS = ("train", "val", "test")


def load_classification(spec: str, split: str, labels: Optional[List[str]] = None) -> ClassificationSet:
    """Load one split of a classification dataset named by `spec`."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if spec == "digits":
        from edgecnn.data.digits import load_digits
        return load_digits(split)
    if spec == "shapes":
        from edgecnn.data.shapes import load_shapes
        return load_shapes(split)
    from edgecnn.data.folder import load_folder
    return load_folder(spec, split, labels)


__all__ = ["ClassificationSet", "DataInfo", "load_classification"]
