"""Segmentation datasets: synthetic shapes scenes, mask PNG directories and YOLO-seg
polygon labels.

Every split becomes a SegmentationSet: images (OpenCV BGR uint8) and, per image, a
class map (H, W) uint8 of label indices, 255 meaning "ignore" (not scored, not
trained on), as in Pascal VOC.

- Mask PNGs: DIR/images/<split>/NAME.(png|jpg|...) with DIR/masks/<split>/NAME.png.
  Labels come from DIR/data.yaml (`names`, as Ultralytics writes them) or
  DIR/labels.txt (one a line). A grey PNG holds class indices; a palette PNG (VOC
  style) is read as its palette indices; an RGB PNG, or a palette PNG when data.yaml
  gives `colors` (one [r, g, b] per label), is mapped colour by colour.
- YOLO-seg: DIR/data.yaml + DIR/images/<split> + DIR/labels/<split>/NAME.txt with
  `class x1 y1 x2 y2 ...` polygons in 0..1 (Ultralytics' segment format), rasterised
  in file order onto background; the labels are "background" and then `names`.
- "shapes": the detection scenes (edgecnn.data.detection) with exact masks: label 0
  is background, then circle, rectangle, triangle.

Problems in the source data (a mask whose size differs from its image, a class index
beyond the labels, a colour that matches no label, a missing mask, a bad polygon line)
are collected as Problem records naming file and line: the image is skipped and
counted, or with strict=True the first one is a UserError. An empty mask directory
is always an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.core.files import is_image_file
from edgecnn.core.scenes import DETECTION_SHAPES
from edgecnn.data.detection import (MIN_VISIBLE, SHAPES_SPLITS, Problem, _report, _yaml, shapes_scene_layers,
                                    yolo_names)

IGNORE = 255  # a mask value that is neither trained on nor scored
BACKGROUND = "background"
SHAPES_LABELS = [BACKGROUND, *DETECTION_SHAPES]


@dataclass
class SegmentationSet:
    name: str
    split: str
    labels: List[str]
    images: List[np.ndarray]
    masks: List[np.ndarray]  # each (H, W) uint8: label index, or IGNORE
    problems: List[Problem] = field(default_factory=list)
    files: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.masks[index]

    def take(self, indices: Sequence[int]) -> "SegmentationSet":
        return SegmentationSet(self.name, self.split, self.labels, [self.images[i] for i in indices],
                               [self.masks[i] for i in indices], self.problems,
                               [self.files[i] for i in indices] if self.files else [])

    def summary(self) -> str:
        counts = np.zeros(len(self.labels), np.int64)
        for mask in self.masks:
            counts += np.bincount(mask.ravel(), minlength=256)[:len(self.labels)]
        shares = ", ".join(f"{label} {100 * c / max(1, counts.sum()):.1f}%" for label, c in zip(self.labels, counts))
        text = f"{self.name}/{self.split}: {len(self)} images; pixels {shares}"
        if self.problems:
            text += f"; {len(self.problems)} problems skipped (first: {self.problems[0]})"
        return text


# ---------------------------------------------------------------- synthetic shapes

def shapes_mask_scene(seed: int, split: str, index: int, size: int = 192,
                      min_visible: float = MIN_VISIBLE) -> Tuple[np.ndarray, np.ndarray]:
    """The detection scene `index` and its exact class map (0 background, kind + 1)."""
    image, owner, kinds, _ = shapes_scene_layers(seed, split, index, size, DETECTION_SHAPES, min_visible)
    lookup = np.asarray([0, *[k + 1 for k in kinds]], np.uint8)  # owner -1 -> background
    return image, lookup[owner + 1]


def load_shapes_segmentation(split: str, seed: int = 0, size: int = 192, count: Optional[int] = None,
                             min_visible: float = MIN_VISIBLE) -> SegmentationSet:
    count = SHAPES_SPLITS[split] if count is None else count
    scenes = [shapes_mask_scene(seed, split, i, size, min_visible) for i in range(count)]
    return SegmentationSet("shapes", split, list(SHAPES_LABELS), [s[0] for s in scenes], [s[1] for s in scenes])


# ---------------------------------------------------------------- mask PNGs

def _labels_and_colours(base: Path) -> Tuple[List[str], Optional[np.ndarray], Path]:
    config_path, text_path = base / "data.yaml", base / "labels.txt"
    if config_path.is_file():
        config = _yaml(config_path)
        labels = yolo_names(config, config_path)
        colours = config.get("colors")
        if colours is None:
            return labels, None, config_path
        try:
            table = np.asarray(colours, np.int64).reshape(len(labels), 3)
        except ValueError:
            raise UserError(f"{config_path}: colors needs one [r, g, b] per label ({len(labels)})") from None
        return labels, table, config_path
    if text_path.is_file():
        labels = [line.strip() for line in text_path.read_text().splitlines() if line.strip()]
        if labels:
            return labels, None, text_path
    raise UserError(f"segmentation data {base} names no labels (expected DIR/data.yaml with names, or DIR/labels.txt)")


def read_mask(path: Path, labels: List[str], colours: Optional[np.ndarray], problems: List[Problem],
              strict: bool) -> Optional[np.ndarray]:
    """A mask PNG as label indices (IGNORE kept); None (and a Problem) when unusable."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            mode, palette = opened.mode, opened.getpalette()
            values = np.asarray(opened)
    except OSError as exc:
        _report(problems, Problem(str(path), None, f"mask does not decode ({exc})"), strict)
        return None
    if mode == "P" and colours is not None:  # palette colours matched to the labels' colours
        table = np.asarray(palette or [], np.int64).reshape(-1, 3)
        values = table[values] if len(table) else np.zeros(values.shape + (3,), np.int64)
        mode = "RGB"
    if mode in ("RGB", "RGBA"):
        if colours is None:
            _report(problems, Problem(str(path), None, "colour mask, but data.yaml gives no colors (one [r, g, b] "
                                      "per label)"), strict)
            return None
        rgb = np.asarray(values)[..., :3].astype(np.int64)
        keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        known = (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
        found = np.unique(keys)
        unmatched = found[~np.isin(found, known)]
        if len(unmatched):
            colour = int(unmatched[0])
            _report(problems, Problem(str(path), None, f"colour ({colour >> 16}, {(colour >> 8) & 255}, "
                                      f"{colour & 255}) matches no label" + (" (its palette)" if palette else "")),
                    strict)
            return None
        order = np.argsort(known)
        return order[np.searchsorted(known[order], keys)].astype(np.uint8)
    if values.ndim != 2 or mode not in ("L", "P", "I", "I;16", "1"):
        _report(problems, Problem(str(path), None, f"mask must be a grey or palette PNG of label indices "
                                  f"(mode {mode})"), strict)
        return None
    values = values.astype(np.int64)
    beyond = np.unique(values[(values >= len(labels)) & (values != IGNORE)])
    if len(beyond) or values.min() < 0:
        _report(problems, Problem(str(path), None, f"class index {int(beyond[0]) if len(beyond) else int(values.min())} "
                                  f"beyond the {len(labels)} labels (255 means ignore)"), strict)
        return None
    return values.astype(np.uint8)


def _images_with_labels(image_dir: Path, label_of: Callable[[Path], Path], missing: str,
                        problems: List[Problem], strict: bool) -> Iterator[Tuple[Path, np.ndarray, Path]]:
    """(image path, decoded image, its label file) for every image under image_dir whose
    label file exists and which decodes; the others are reported and skipped."""
    for path in sorted(p for p in image_dir.rglob("*") if is_image_file(p)):
        label_file = label_of(path)
        if not label_file.is_file():
            _report(problems, Problem(str(label_file), None, missing), strict)
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            _report(problems, Problem(str(path), None, "image does not decode"), strict)
            continue
        yield path, image, label_file


def load_mask_folder(root: str, split: str, strict: bool = False) -> SegmentationSet:
    base = Path(root)
    labels, colours, _ = _labels_and_colours(base)
    if len(labels) > IGNORE:
        raise UserError(f"{root}: at most {IGNORE} labels (255 means ignore), got {len(labels)}")
    image_dir, mask_dir = base / "images" / split, base / "masks" / split
    if not image_dir.is_dir():
        raise UserError(f"image folder not found: {image_dir}")
    if not mask_dir.is_dir() or not any(mask_dir.iterdir()):
        raise UserError(f"mask folder {mask_dir} is empty or missing")
    problems: List[Problem] = []
    images, masks, files = [], [], []
    for path, image, mask_path in _images_with_labels(
            image_dir, lambda path: (mask_dir / path.relative_to(image_dir)).with_suffix(".png"), "missing mask",
            problems, strict):
        mask = read_mask(mask_path, labels, colours, problems, strict)
        if mask is None:
            continue
        if mask.shape != image.shape[:2]:
            _report(problems, Problem(str(mask_path), None, f"mask is {mask.shape[1]}x{mask.shape[0]}, its image "
                                      f"{image.shape[1]}x{image.shape[0]}"), strict)
            continue
        images.append(image)
        masks.append(mask)
        files.append(str(path))
    return _usable_set(root, split, labels, image_dir, images, masks, problems, files)


def write_mask_folder(data: SegmentationSet, root: str, split: Optional[str] = None) -> Path:
    """Write images and class-index mask PNGs with DIR/data.yaml (used to export synthetic shapes)."""
    import yaml

    base = Path(root)
    split = split or data.split
    (base / "images" / split).mkdir(parents=True, exist_ok=True)
    (base / "masks" / split).mkdir(parents=True, exist_ok=True)
    for i, (image, mask) in enumerate(zip(data.images, data.masks)):
        cv2.imwrite(str(base / "images" / split / f"{i:06d}.png"), image)
        cv2.imwrite(str(base / "masks" / split / f"{i:06d}.png"), mask)
    config = base / "data.yaml"
    existing = _yaml(config) if config.exists() else {"path": ".", "names": list(data.labels)}
    existing[split] = f"images/{split}"
    config.write_text(yaml.safe_dump(existing, sort_keys=False))
    return base


# ---------------------------------------------------------------- YOLO-seg polygons

def read_yolo_polygons(path: Path, width: int, height: int, num_classes: int, problems: List[Problem],
                       strict: bool) -> Optional[np.ndarray]:
    """A YOLO-seg label file rasterised: 0 background, class + 1 inside its polygons
    (later lines drawn over earlier ones); None when a line is bad (reported)."""
    mask = np.zeros((height, width), np.uint8)
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            _report(problems, Problem(str(path), number, f"not numbers: {line.strip()[:60]!r}"), strict)
            return None
        cls, coords = values[0], values[1:]
        if cls != int(cls) or not 0 <= cls < num_classes:
            _report(problems, Problem(str(path), number, f"class index {fields[0]} beyond the {num_classes} classes"),
                    strict)
            return None
        if len(coords) < 6 or len(coords) % 2:
            _report(problems, Problem(str(path), number, f"a polygon needs 3 or more x y pairs, got {len(coords)} "
                                      "values"), strict)
            return None
        points = np.asarray(coords, np.float64).reshape(-1, 2)
        if points.min() < -1e-3 or points.max() > 1 + 1e-3:
            _report(problems, Problem(str(path), number, "polygon point out of range 0..1"), strict)
            return None
        fixed = np.round(points * [width, height] * 16).astype(np.int32)  # 1/16-pixel fixed point (shift=4)
        cv2.fillPoly(mask, [fixed], int(cls) + 1, lineType=cv2.LINE_8, shift=4)
    return mask


def load_yolo_seg(root: str, split: str, strict: bool = False) -> SegmentationSet:
    from edgecnn.data.detection import _label_path

    base = Path(root)
    config_path = base / "data.yaml" if base.is_dir() else base
    names = yolo_names(_yaml(config_path), config_path)
    base = config_path.parent
    image_dir = base / "images" / split
    if not image_dir.is_dir():
        raise UserError(f"image folder not found: {image_dir}")
    problems: List[Problem] = []
    images, masks, files = [], [], []
    for path, image, label_file in _images_with_labels(image_dir, _label_path, "missing label file", problems,
                                                       strict):
        mask = read_yolo_polygons(label_file, image.shape[1], image.shape[0], len(names), problems, strict)
        if mask is None:
            continue
        images.append(image)
        masks.append(mask)
        files.append(str(path))
    return _usable_set(root, split, [BACKGROUND, *names], image_dir, images, masks, problems, files)


def _usable_set(root, split: str, labels: List[str], image_dir, images, masks, problems, files) -> SegmentationSet:
    """The split, or one line saying that none of its images could be used, and why."""
    if not images:
        raise UserError(f"no usable images in {image_dir}" + (f" ({len(problems)} problems, first: {problems[0]})"
                                                              if problems else ""))
    return SegmentationSet(str(root), split, labels, images, masks, problems, files)


def load_segmentation(spec: str, split: str, strict: bool = False, count: Optional[int] = None) -> SegmentationSet:
    """'shapes', a mask PNG directory (DIR/masks/<split>) or a YOLO-seg directory
    (DIR/labels/<split>). `count` limits the synthetic set (generated on demand)."""
    split = "val" if split == "test" and spec != "shapes" and not (Path(spec) / "images" / "test").is_dir() else split
    if spec == "shapes":
        return load_shapes_segmentation(split, count=count)
    base = Path(spec)
    if not base.exists():
        raise UserError(f"segmentation data not found: {spec}")
    if (base / "masks").is_dir():
        return load_mask_folder(spec, split, strict)
    if (base / "labels").is_dir() or base.suffix in (".yaml", ".yml"):
        return load_yolo_seg(spec, split, strict)
    raise UserError(f"{spec} is not a segmentation dataset (expected DIR/masks/<split> with mask PNGs, or "
                    "DIR/labels/<split> with YOLO-seg polygons)")
