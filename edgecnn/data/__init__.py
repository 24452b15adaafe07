"""Datasets by name or path: 'digits' (bundled real handwriting; 'digits?fold=K' holds
out another fifth of it), 'shapes' (deterministic synthetic), or an ImageFolder
directory."""
from __future__ import annotations

from typing import List, Optional

from edgecnn.data.base import ClassificationSet, DataInfo
from edgecnn.core.errors import UserError

SPLITS = ("train", "val", "test")


def load_classification(spec: str, split: str, labels: Optional[List[str]] = None) -> ClassificationSet:
    """Load one split of a classification dataset named by `spec`."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    from edgecnn.data.digits import fold_of, is_digits, load_digits

    if is_digits(spec):
        return load_digits(split, fold_of(spec))
    if spec == "shapes":
        from edgecnn.data.shapes import load_shapes
        return load_shapes(split)
    from edgecnn.data.folder import load_folder
    return load_folder(spec, split, labels)


__all__ = ["ClassificationSet", "DataInfo", "load_classification"]
