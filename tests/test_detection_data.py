"""Detection data: synthetic shapes, YOLO and COCO readers with their problem reports,
box-preserving augmentation, and the shared decode/NMS."""
import json

import cv2
import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from edgecnn.data.augment import DetectAugment, mosaic
from edgecnn.data.detection import (load_coco, load_detection, load_shapes_detection, load_yolo, shapes_scene,
                                    shapes_scene_visibility, write_yolo)
from edgecnn.core.errors import UserError
from edgecnn.runtime.heads.ltrb_sigmoid import cell_centres, decode_levels as decode, level_shape
from edgecnn.tasks.detect.task import postprocess


def test_shapes_scenes_are_deterministic_and_boxes_are_tight():
    a = load_shapes_detection("val", count=30)
    b = load_shapes_detection("val", count=30)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    counts = [len(c) for c in a.classes]
    assert 1 <= min(counts) and max(counts) <= 4
    sides = np.concatenate([np.maximum(bx[:, 2] - bx[:, 0], bx[:, 3] - bx[:, 1]) for bx in a.boxes]) / 192
    assert sides.min() >= 0.02 and sides.max() <= 0.605
    assert set(np.concatenate(a.classes)) == {0, 1, 2}


def test_shapes_scene_visibility_is_the_scene_plus_each_shapes_visible_fraction():
    fractions = []
    for index in range(40):
        image, boxes, classes, visible = shapes_scene_visibility(0, "val", index)
        plain = shapes_scene(0, "val", index)
        assert np.array_equal(image, plain[0]) and np.array_equal(boxes, plain[1]) and np.array_equal(classes, plain[2])
        assert len(visible) == len(classes)
        fractions.extend(visible)
    # a shape left under 40% visible is not drawn; the last shape drawn is never covered
    assert min(fractions) >= 0.4 and max(fractions) == 1.0 and min(fractions) < 0.8


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_min_visible_bounds_the_occlusion_and_the_shapes_command_writes_it(tmp_path):
    lighter = np.concatenate([shapes_scene_visibility(0, "val", i, min_visible=0.8)[3] for i in range(40)])
    assert lighter.min() >= 0.8 and lighter.min() < 0.9
    written = run_cli("shapes", "--out", tmp_path / "light", "--train", 2, "--val", 3, "--min-visible", 0.8, check=True)
    assert "wrote 3 val images" in written.stdout
    val = load_yolo(tmp_path / "light", "val")
    expected = load_shapes_detection("val", count=3, min_visible=0.8)
    assert all(np.array_equal(a, b) for a, b in zip(val.classes, expected.classes))
    assert all(np.allclose(a, b, atol=0.01) for a, b in zip(val.boxes, expected.boxes))
    for bad in (["--min-visible", "0"], ["--min-visible", "1.5"], ["--task", "classify", "--min-visible", "0.5"]):
        assert_one_line_error(run_cli("shapes", "--out", tmp_path / "bad", *bad), contains="--min-visible")


@pytest.fixture
def yolo_dir(tmp_path):
    data = load_shapes_detection("train", count=6)
    write_yolo(data, tmp_path / "yolo", "train")
    val = load_shapes_detection("val", count=4)
    write_yolo(val, tmp_path / "yolo", "val")
    return tmp_path / "yolo", val


def test_yolo_round_trip(yolo_dir):
    root, val = yolo_dir
    loaded = load_yolo(str(root), "val")
    assert loaded.labels == val.labels and len(loaded) == 4 and not loaded.problems
    for got, want in zip(loaded.boxes, val.boxes):
        assert np.allclose(got, want, atol=0.01)


def test_yolo_names_as_an_id_map(yolo_dir):
    root, _ = yolo_dir
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\n"
                                    "names:\n  0: circle\n  1: rectangle\n  2: triangle\n")
    assert load_yolo(str(root), "val").labels == ["circle", "rectangle", "triangle"]


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_yolo_problems_are_reported_with_file_and_line(yolo_dir):
    root, _ = yolo_dir
    label = root / "labels" / "val" / "000000.txt"
    lines = label.read_text().splitlines()
    label.write_text("\n".join(lines + ["0 1.2 0.5 0.1 0.1", "7 0.5 0.5 0.1 0.1"]) + "\n")
    (root / "labels" / "val" / "000001.txt").unlink()
    (root / "images" / "val" / "000002.png").write_bytes(b"not an image")
    loaded = load_yolo(str(root), "val")
    reasons = [str(p) for p in loaded.problems]
    assert any(f"000000.txt:{len(lines) + 1}" in r and "out of range" in r for r in reasons)
    assert any(f"000000.txt:{len(lines) + 2}" in r and "unknown class id 7" in r for r in reasons)
    assert any("000001.txt" in r and "missing label file" in r for r in reasons)
    assert any("000002.png" in r and "does not decode" in r for r in reasons)
    assert len(loaded) == 2 and len(loaded.boxes[0]) == len(lines)  # good lines kept
    assert "4 problems skipped" in loaded.summary()
    with pytest.raises(UserError, match="000000.txt"):
        load_yolo(str(root), "val", strict=True)
    assert_one_line_error(run_cli("train", "--task", "detect", "--data", root, "--strict", "--epochs", "1",
                                  "--out", root / "run"), contains="out of range")


def test_coco_json(tmp_path):
    val = load_shapes_detection("val", count=3)
    images, annotations = [], []
    for i, (image, boxes, classes) in enumerate(val):
        cv2.imwrite(str(tmp_path / f"{i}.png"), image)
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 192, "height": 192})
        for box, cls in zip(boxes, classes):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(cls) + 5,
                                "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    annotations.append({"id": 999, "image_id": 1, "category_id": 42, "bbox": [1, 1, 5, 5]})
    categories = [{"id": k + 5, "name": n} for k, n in enumerate(val.labels)]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    loaded = load_detection(str(path), "val")
    assert loaded.labels == val.labels
    assert all(np.allclose(a, b, atol=1e-4) for a, b in zip(loaded.boxes, val.boxes))
    assert len(loaded.problems) == 1 and "unknown category_id 42" in str(loaded.problems[0])
    with pytest.raises(UserError, match="42"):
        load_coco(str(path), strict=True)


def coloured_box_scene():
    image = np.zeros((120, 160, 3), np.uint8)
    image[30:70, 30:90] = (40, 60, 180)
    return image, np.array([[30, 30, 90, 70]], np.float32), np.array([1])


def red_extent(image):
    mask = (image[:, :, 2] > 128) & (image[:, :, 1] < 100) & (image[:, :, 0] < 100)
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_scale_and_crop_keep_boxes_on_the_object(seed):
    image, boxes, classes = coloured_box_scene()
    augment = DetectAugment(hflip=False, hue=0, saturation=0, value=0, translate=0.1, scale=(0.7, 1.3))
    out, got, kept = augment(image, boxes, classes, np.random.default_rng(seed))
    assert len(got) == 1 and kept[0] == 1
    assert np.abs(got[0] - red_extent(out)).max() <= 1.5, (got[0], red_extent(out))


MOSAIC_COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]  # BGR, one per tile


def colour_extent(image, colour):
    ys, xs = np.nonzero((np.abs(image.astype(int) - colour) < 60).all(-1))
    return None if len(xs) == 0 else np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


@pytest.mark.parametrize("seed", range(8))
def test_mosaic_boxes_follow_their_objects(seed):
    rng = np.random.default_rng(100 + seed)
    samples = []
    for colour in MOSAIC_COLOURS:  # one box per image, at a random place; the class says which image
        image = np.zeros((96, 128, 3), np.uint8)
        x, y = rng.integers(0, 80), rng.integers(0, 50)
        image[y:y + 40, x:x + 44] = colour
        samples.append((image, np.array([[x, y, x + 44, y + 40]], np.float32), np.array([len(samples)])))
    out, boxes, classes = mosaic(samples, np.random.default_rng(seed), 128)
    assert out.shape == (128, 128, 3) and sorted(classes) == sorted(set(classes))
    for box, cls in zip(boxes, classes):
        extent = colour_extent(out, MOSAIC_COLOURS[cls])
        assert extent is not None and np.abs(box - extent).max() <= 1.5, (cls, box, extent)
    for cls, colour in enumerate(MOSAIC_COLOURS):
        # zoom <= 1, so more than 35% of the unzoomed area in view is more than 35% of the object
        extent = colour_extent(out, colour)
        if extent is not None and np.prod(extent[2:] - extent[:2]) > 0.35 * 44 * 40:
            assert cls in classes


def test_flip_mirrors_boxes():
    image, boxes, classes = coloured_box_scene()
    augment = DetectAugment(scale=(1, 1), translate=0, hue=0, saturation=0, value=0)
    flips = 0
    for seed in range(8):
        out, got, _ = augment(image, boxes, classes, np.random.default_rng(seed))
        assert np.abs(got[0] - red_extent(out)).max() <= 0.5
        flips += got[0][0] != boxes[0][0]
    assert 0 < flips < 8


def test_colour_jitter_leaves_boxes_alone():
    image, boxes, classes = coloured_box_scene()
    augment = DetectAugment(scale=(1, 1), translate=0, hflip=False, value=0.2, saturation=0.3, hue=0.01)
    out, got, _ = augment(image, boxes, classes, np.random.default_rng(0))
    assert np.array_equal(got, boxes) and not np.array_equal(out, image)


def test_box_pushed_out_of_frame_is_dropped():
    image, boxes, classes = coloured_box_scene()
    augment = DetectAugment(scale=(1, 1), translate=0, hflip=False, hue=0, saturation=0, value=0)
    far = np.array([[155, 30, 200, 70]], np.float32)  # mostly outside a 160-wide image
    _, got, kept = augment(image, far, classes, np.random.default_rng(0))
    assert len(got) == 0 and len(kept) == 0


def test_decode_and_nms_recover_an_encoded_box():
    input_size, strides = (96, 128), (8, 16, 32)
    centres = cell_centres(input_size, strides)
    assert len(centres) == sum(np.prod(level_shape(input_size, s)) for s in strides)
    target = np.array([40.0, 20.0, 90.0, 60.0])
    boxes, scores = [], []
    offset = 0
    for s in strides:
        h, w = level_shape(input_size, s)
        c = centres[offset:offset + h * w]
        offset += h * w
        d = np.stack([c[:, 0] - target[0], c[:, 1] - target[1], target[2] - c[:, 0], target[3] - c[:, 1]], 1)
        boxes.append((np.clip(d, 0, None) / [128, 96, 128, 96])[None].astype(np.float32))
        inside = (d > 0).all(1)
        p = np.zeros((h * w, 2), np.float32)
        p[inside, 1] = 0.9
        scores.append(p[None])
    corners, probabilities = decode([b[0] for b in boxes], [s[0] for s in scores], input_size, strides)
    result = postprocess(corners, probabilities, ["a", "b"], input_size, (192, 256), 0.5, 0.5)
    assert len(result) == 1 and result.classes[0] == 1
    assert np.allclose(result.boxes[0], target * 2, atol=1e-3)
    assert result.to_dict()["detections"][0]["label"] == "b"
