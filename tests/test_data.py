import numpy as np
import pytest

from edgecnn.data import load_classification
from edgecnn.data.augment import ClassifyAugment
from edgecnn.data.digits import _tiles
from edgecnn.core.errors import UserError


def test_digits_split_is_4000_train_1000_held_out_and_disjoint():
    train, val = load_classification("digits", "train"), load_classification("digits", "val")
    assert len(train) == 4000 and len(val) == 1000
    assert list(train.class_counts()) == [400] * 10 and list(val.class_counts()) == [100] * 10
    # tile positions: every 5th column is held out, the rest is train
    tiles = _tiles()
    held = {tiles[r, c].tobytes() for r in range(50) for c in range(100) if c % 5 == 4}
    trained = {tiles[r, c].tobytes() for r in range(50) for c in range(100) if c % 5 != 4}
    assert {img.tobytes() for img in val.images} == held
    assert {img.tobytes() for img in train.images} == trained
    assert not held & trained  # no held-out tile is ever trained on
    assert load_classification("digits", "test").images[0].tobytes() == val.images[0].tobytes()


def test_shapes_are_deterministic_and_balanced():
    a, b = load_classification("shapes", "val"), load_classification("shapes", "val")
    assert all(np.array_equal(x, y) for x, y in zip(a.images[:20], b.images[:20]))
    assert list(a.targets) == list(b.targets)
    train = load_classification("shapes", "train")
    assert not np.array_equal(train.images[0], a.images[0])
    assert a.class_counts().min() > 0.15 * len(a)


def test_synthetic_shapes_have_a_test_split_apart_from_val():
    """Scenes that no training run validates on, so a recipe chosen on "val" is checked on
    images it was not chosen on."""
    from edgecnn.data.detection import ShapesImages, load_shapes_detection
    from edgecnn.data.segmentation import load_segmentation

    images = {split: {image.tobytes() for image in load_classification("shapes", split).images}
              for split in ("train", "val", "test")}
    assert len(images["test"]) == len(images["val"]) == 400
    assert not images["test"] & images["val"] and not images["test"] & images["train"]
    val, test = load_shapes_detection("val", count=8), load_shapes_detection("test", count=8)
    assert len(ShapesImages("test")) == len(ShapesImages("val")) == 300
    assert np.array_equal(ShapesImages("test")[3], test.images[3])
    assert not any(np.array_equal(v, t) for v, t in zip(val.images, test.images))
    masks = load_segmentation("shapes", "test", count=4)
    assert np.array_equal(masks.images[0], test.images[0])  # the segmentation scenes are the detection scenes


def test_image_folder_loads(image_folder):
    data = load_classification(str(image_folder), "train")
    assert data.labels == ["digit3", "digit7"] and len(data) == 80
    assert data.info.color == "gray"


def test_missing_directory(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_classification(str(tmp_path / "nope"), "train")


def test_empty_class_folder(image_folder):
    (image_folder / "train" / "digit9").mkdir()
    with pytest.raises(UserError, match="digit9 has no images"):
        load_classification(str(image_folder), "train")


def test_corrupt_image_is_named(image_folder):
    bad = image_folder / "train" / "digit3" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    with pytest.raises(UserError, match="broken.png"):
        load_classification(str(image_folder), "train")


def test_augment_is_reproducible_and_keeps_shape():
    image = load_classification("digits", "train").images[0]
    augment = ClassifyAugment()
    a = augment(image, np.random.default_rng([0, 1, 2]))
    b = augment(image, np.random.default_rng([0, 1, 2]))
    c = augment(image, np.random.default_rng([0, 1, 3]))
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_digits_folds_hold_out_another_fifth_of_the_sheet():
    """`digits?fold=K` holds out the columns col % 5 == K: `digits` is fold 4, and the
    five held-out sets are disjoint and balanced (100 tiles of each digit)."""
    default, fold4 = load_classification("digits", "val"), load_classification("digits?fold=4", "val")
    assert np.array_equal(np.stack(default.images), np.stack(fold4.images))
    held_out = [np.stack(load_classification(f"digits?fold={k}", "val").images) for k in range(5)]
    train0 = load_classification("digits?fold=0", "train")
    assert len(held_out[0]) == 1000 and len(train0) == 4000
    assert np.bincount(load_classification("digits?fold=0", "val").targets).tolist() == [100] * 10
    seen = {tile.tobytes() for tile in train0.images}
    assert not any(tile.tobytes() in seen for tile in held_out[0])
    assert all(not np.array_equal(held_out[0], other) for other in held_out[1:])
    for spec in ("digits?fold=5", "digits?fold=x", "digits?folds=1"):
        with pytest.raises(UserError, match="fold"):
            load_classification(spec, "val")
