"""Detection datasets: synthetic shapes, YOLO-txt directories and COCO json files.

Every split becomes a DetectionSet: images (OpenCV BGR uint8) with, per image, boxes
(N, 4) in pixels (x1, y1, x2, y2) and class indices (N,). Problems in the source data
(a label out of range, an unknown class id, a missing label file, an image that does
not decode) are collected as Problem records naming file and line: by default the
offending label or image is skipped and counted; with strict=True the first one is
a UserError. Nothing is dropped silently.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from edgecnn.core.files import is_image_file
from edgecnn.core.scenes import DETECTION_SHAPES, random_colour, shape_polygon, textured_background
from edgecnn.core.errors import UserError

# "test": scenes drawn from their own seeds, which no training run or recipe choice sees
# (the gates and the training loop's validation use "val")
SHAPES_SPLITS = {"train": 2000, "val": 300, "test": 300}
SPLIT_IDS = {"train": 10, "val": 11, "test": 12}


@dataclass
class Problem:
    path: str
    line: Optional[int]
    reason: str

    def __str__(self) -> str:
        return f"{self.path}{f':{self.line}' if self.line else ''}: {self.reason}"


@dataclass
class DetectionSet:
    name: str
    split: str
    labels: List[str]
    images: List[np.ndarray]
    boxes: List[np.ndarray]  # each (N, 4) float32, pixels, x1 y1 x2 y2
    classes: List[np.ndarray]  # each (N,) int64
    color: str = "rgb"
    problems: List[Problem] = field(default_factory=list)
    files: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.images[index], self.boxes[index], self.classes[index]

    def take(self, indices: Sequence[int]) -> "DetectionSet":
        return DetectionSet(self.name, self.split, self.labels, [self.images[i] for i in indices],
                            [self.boxes[i] for i in indices], [self.classes[i] for i in indices], self.color,
                            self.problems, [self.files[i] for i in indices] if self.files else [])

    def summary(self) -> str:
        objects = sum(len(c) for c in self.classes)
        text = f"{self.name}/{self.split}: {len(self)} images, {objects} objects"
        if self.problems:
            text += f", {len(self.problems)} problems skipped (first: {self.problems[0]})"
        return text


def _report(problems: List[Problem], problem: Problem, strict: bool) -> None:
    if strict:
        raise UserError(str(problem))
    problems.append(problem)


# ---------------------------------------------------------------- synthetic shapes

MIN_VISIBLE = 0.4  # occlusion may hide up to 60% of a shape, and cut a large one into pieces


def shapes_scene(seed: int, split: str, index: int, size: int = 192,
                 kinds: Sequence[str] = DETECTION_SHAPES,
                 min_visible: float = MIN_VISIBLE) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One detection sample: 1-4 shapes, 5-60% of the image side (the larger box side), on a textured
    background, possibly overlapping. Each box is the tight box of the shape's VISIBLE
    pixels; a shape that would leave an earlier one less than `min_visible` visible is not drawn."""
    image, boxes, classes, _ = shapes_scene_visibility(seed, split, index, size, kinds, min_visible)
    return image, boxes, classes


def shapes_scene_visibility(seed: int, split: str, index: int, size: int = 192,
                            kinds: Sequence[str] = DETECTION_SHAPES, min_visible: float = MIN_VISIBLE
                            ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """shapes_scene plus, per object, the fraction of its shape left visible (min_visible-1),
    so that errors can be broken down by occlusion."""
    image, owner, kinds_drawn, areas = shapes_scene_layers(seed, split, index, size, kinds, min_visible)
    boxes, classes, visible = [], [], []
    for i, kind in enumerate(kinds_drawn):
        ys, xs = np.nonzero(owner == i)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        classes.append(kind)
        visible.append(len(xs) / areas[i])
    return (image, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int64),
            np.asarray(visible, np.float32))


def shapes_scene_layers(seed: int, split: str, index: int, size: int = 192, kinds: Sequence[str] = DETECTION_SHAPES,
                        min_visible: float = MIN_VISIBLE) -> Tuple[np.ndarray, np.ndarray, List[int], List[int]]:
    """The drawn scene: (image, owner map (which object each pixel shows, -1: background),
    each object's class index, each object's full area in pixels). Shapes are filled
    without anti-aliasing, so the owner map is exact: the segmentation scenes'
    masks come from it (edgecnn.data.segmentation)."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    image, background = textured_background(rng, (size, size))
    owner = np.full((size, size), -1, np.int32)  # which object each pixel shows
    areas: List[int] = []
    kinds_drawn: List[int] = []
    for _ in range(int(rng.integers(1, 5))):
        kind = int(rng.integers(len(kinds)))
        extent = rng.uniform(0.07, 0.6) * size  # circumscribed diameter: the box side is at most this
        aspect = rng.uniform(0.4, 1.0) if kinds[kind] == "rectangle" else 1.0
        radius = extent / 2 / (np.sqrt(1 + aspect ** 2) if kinds[kind] == "rectangle" else 1.0)
        centre = rng.uniform(radius * 0.8, size - radius * 0.8, 2)
        points = shape_polygon(kinds[kind], tuple(centre), radius, rng.uniform(0, 2 * np.pi), aspect)
        polygon = [np.round(points * 16).astype(np.int32)]  # 1/16-pixel fixed point (shift=4)
        mask = np.zeros((size, size), np.uint8)
        cv2.fillPoly(mask, polygon, 1, lineType=cv2.LINE_8, shift=4)
        area = int(mask.sum())
        if area < 9:
            continue
        visible_after = [(np.count_nonzero(owner == i) - np.count_nonzero((owner == i) & (mask > 0))) / a
                         for i, a in enumerate(areas)]
        if any(v < min_visible for v in visible_after):
            continue  # would hide an earlier shape too much
        colour = random_colour(rng, background)
        cv2.fillPoly(image, polygon, tuple(float(c) for c in colour),
                     lineType=cv2.LINE_8, shift=4)
        owner[mask > 0] = len(areas)
        areas.append(area)
        kinds_drawn.append(kind)
    return image, owner, kinds_drawn, areas


class ShapesImages(Sequence):
    """The images of a synthetic split, each drawn when it is indexed: calibration takes
    a few hundred of the 2000 training scenes (drawing all of them took 11 s)."""

    def __init__(self, split: str, seed: int = 0, size: int = 192) -> None:
        self.split = split
        self.seed, self.size = seed, size

    def __len__(self) -> int:
        return SHAPES_SPLITS[self.split]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return shapes_scene_layers(self.seed, self.split, index % len(self), self.size)[0]


def load_shapes_detection(split: str, seed: int = 0, size: int = 192, count: Optional[int] = None,
                          kinds: Sequence[str] = DETECTION_SHAPES, min_visible: float = MIN_VISIBLE) -> DetectionSet:
    count = SHAPES_SPLITS[split] if count is None else count
    scenes = [shapes_scene(seed, split, i, size, kinds, min_visible) for i in range(count)]
    return DetectionSet("shapes", split, list(kinds), [s[0] for s in scenes], [s[1] for s in scenes],
                        [s[2] for s in scenes])


# ---------------------------------------------------------------- YOLO txt

def _yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a YAML mapping")
    return data


def yolo_names(config: dict, path: Path) -> List[str]:
    """Ultralytics convention: names as a list, or an {id: name} map with ids 0..N-1."""
    names = config.get("names")
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    if isinstance(names, dict) and names:
        ids = sorted(int(k) for k in names)
        if ids != list(range(len(ids))):
            raise UserError(f"{path}: names ids must be 0..{len(ids) - 1}")
        return [str(names[i] if i in names else names[str(i)]) for i in ids]
    raise UserError(f"{path} has no 'names' (a list or an id: name map)")


def _label_path(image_path: Path) -> Path:
    """images/<split>/x.jpg -> labels/<split>/x.txt (the Ultralytics rule)."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def read_yolo_labels(path: Path, width: int, height: int, num_classes: int, problems: List[Problem],
                     strict: bool) -> Tuple[np.ndarray, np.ndarray]:
    boxes, classes = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            _report(problems, Problem(str(path), number, f"not numbers: {line.strip()!r}"), strict)
            continue
        if len(values) != 5:
            _report(problems, Problem(str(path), number, f"expected 'class cx cy w h', got {len(values)} values"),
                    strict)
            continue
        cls, cx, cy, w, h = values
        if cls != int(cls) or not 0 <= cls < num_classes:
            _report(problems, Problem(str(path), number, f"unknown class id {fields[0]} "
                                      f"(dataset has {num_classes} classes)"), strict)
            continue
        if not (0 <= cx <= 1 and 0 <= cy <= 1 and 0 < w <= 1 and 0 < h <= 1) or \
                cx - w / 2 < -1e-3 or cx + w / 2 > 1 + 1e-3 or cy - h / 2 < -1e-3 or cy + h / 2 > 1 + 1e-3:
            _report(problems, Problem(str(path), number, f"box out of range 0..1: {line.strip()!r}"), strict)
            continue
        boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
        classes.append(int(cls))
    box_array = np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0, [width, height, width, height])
    return box_array, np.asarray(classes, np.int64)


def load_yolo(root: str, split: str, strict: bool = False) -> DetectionSet:
    """DIR/data.yaml + DIR/images/<split> + DIR/labels/<split> (Ultralytics layout)."""
    base = Path(root)
    config_path = base / "data.yaml" if base.is_dir() else base
    if not config_path.is_file():
        raise UserError(f"detection data not found: {root} (expected DIR/data.yaml)")
    config = _yaml(config_path)
    labels = yolo_names(config, config_path)
    entry = config.get(split) or config.get("val" if split == "test" else split)
    if not entry:
        raise UserError(f"{config_path} has no '{split}' entry")
    top = Path(str(config.get("path") or "."))
    # a relative 'path' is taken beside data.yaml first, then from the working directory
    candidates = [top] if top.is_absolute() else [config_path.parent / top, Path.cwd() / top]
    image_dir = next((c / str(entry) for c in candidates if (c / str(entry)).is_dir()), candidates[0] / str(entry))
    if not image_dir.is_dir():
        raise UserError(f"image folder not found: {image_dir}")
    problems: List[Problem] = []
    images, boxes, classes, files = [], [], [], []
    for path in sorted(p for p in image_dir.rglob("*") if is_image_file(p)):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            _report(problems, Problem(str(path), None, "image does not decode"), strict)
            continue
        label_file = _label_path(path)
        if not label_file.is_file():
            _report(problems, Problem(str(label_file), None, "missing label file"), strict)
            continue
        height, width = image.shape[:2]
        b, c = read_yolo_labels(label_file, width, height, len(labels), problems, strict)
        images.append(image)
        boxes.append(b)
        classes.append(c)
        files.append(str(path))
    if not images:
        raise UserError(f"no usable images in {image_dir}" + (f" ({len(problems)} problems, first: {problems[0]})"
                                                              if problems else ""))
    return DetectionSet(str(root), split, labels, images, boxes, classes, problems=problems, files=files)


def write_yolo(data: DetectionSet, root: str, split: Optional[str] = None) -> Path:
    """Write a DetectionSet in the Ultralytics layout (used to export synthetic shapes)."""
    base = Path(root)
    split = split or data.split
    (base / "images" / split).mkdir(parents=True, exist_ok=True)
    (base / "labels" / split).mkdir(parents=True, exist_ok=True)
    for i, (image, boxes, classes) in enumerate(zip(data.images, data.boxes, data.classes)):
        cv2.imwrite(str(base / "images" / split / f"{i:06d}.png"), image)
        height, width = image.shape[:2]
        lines = [f"{c} {(b[0] + b[2]) / 2 / width:.6f} {(b[1] + b[3]) / 2 / height:.6f} "
                 f"{(b[2] - b[0]) / width:.6f} {(b[3] - b[1]) / height:.6f}" for b, c in zip(boxes, classes)]
        (base / "labels" / split / f"{i:06d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    config = base / "data.yaml"
    existing = _yaml(config) if config.exists() else {"path": ".", "names": list(data.labels)}
    existing[split] = f"images/{split}"
    import yaml

    config.write_text(yaml.safe_dump(existing, sort_keys=False))
    return base


# ---------------------------------------------------------------- COCO json

def load_coco(json_path: str, split: str = "val", strict: bool = False) -> DetectionSet:
    """A COCO detection json; images resolved beside the file or in its images/ folder."""
    path = Path(json_path)
    if not path.is_file():
        raise UserError(f"COCO annotation file not found: {json_path}")
    try:
        coco = json.loads(path.read_text())
        categories = sorted(coco["categories"], key=lambda c: c["id"])
        entries = coco["images"]
        annotations = coco.get("annotations", [])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{json_path} is not a COCO detection file ({exc})") from None
    labels = [str(c["name"]) for c in categories]
    class_of = {c["id"]: i for i, c in enumerate(categories)}
    by_image: Dict[int, list] = {}
    for index, ann in enumerate(annotations):
        by_image.setdefault(ann.get("image_id"), []).append((index, ann))
    problems: List[Problem] = []
    images, boxes, classes, files = [], [], [], []
    for entry in entries:
        candidates = [path.parent / entry["file_name"], path.parent / "images" / entry["file_name"]]
        file = next((c for c in candidates if c.is_file()), candidates[0])
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            _report(problems, Problem(str(file), None, "image does not decode"), strict)
            continue
        height, width = image.shape[:2]
        b, c = [], []
        for index, ann in by_image.get(entry["id"], []):
            where = Problem(str(path), None, "")
            if ann.get("iscrowd", 0):
                continue
            if ann.get("category_id") not in class_of:
                where.reason = f"annotation {index}: unknown category_id {ann.get('category_id')}"
                _report(problems, where, strict)
                continue
            x, y, w, h = ann["bbox"]
            if w <= 0 or h <= 0 or x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
                where.reason = f"annotation {index}: bbox {ann['bbox']} outside image {width}x{height}"
                _report(problems, where, strict)
                continue
            b.append([max(0, x), max(0, y), min(width, x + w), min(height, y + h)])
            c.append(class_of[ann["category_id"]])
        images.append(image)
        boxes.append(np.asarray(b, np.float32).reshape(-1, 4))
        classes.append(np.asarray(c, np.int64))
        files.append(str(file))
    if not images:
        raise UserError(f"no usable images for {json_path}")
    return DetectionSet(str(json_path), split, labels, images, boxes, classes, problems=problems, files=files)


def load_detection(spec: str, split: str, strict: bool = False, count: Optional[int] = None) -> DetectionSet:
    """'shapes', a YOLO directory (or its data.yaml), or a COCO .json file.
    `count` limits the synthetic set (generated on demand)."""
    if spec == "shapes":
        return load_shapes_detection(split, count=count)
    if spec.endswith(".json"):
        return load_coco(spec, split, strict)
    return load_yolo(spec, split, strict)
