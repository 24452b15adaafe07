"""File facts every layer needs once: which files are images, and a file's content hash
(the source hash in model cards and the model digest in bench records)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

# what OpenCV's imread reads on every platform edgecnn runs on
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


def is_image_file(path: Union[str, Path]) -> bool:
    return os.path.splitext(str(path))[1].lower() in IMAGE_SUFFIXES


def sha256_hex(path: Union[str, Path]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (models can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_hash(path: Union[str, Path]) -> str:
    """The card's source_hash form: "sha256:<hex>"."""
    return "sha256:" + sha256_hex(path)
