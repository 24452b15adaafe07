import cv2
import numpy as np
import pytest

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.preprocess import preprocess, preprocess_batch

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


def card(**changes):
    base = dict(task="classify", labels=["a", "b"], input_size=(24, 40), layout="nchw", color="rgb",
                mean=(120.0, 110.0, 100.0), std=(60.0, 50.0, 40.0))
    base.update(changes)
    return ModelCard(**base)


def reference(image_bgr, c):
    """The definition the card states, written out in numpy: grey conversion (grey cards:
    before resizing, so one channel is resized), resize, colour order, (x-mean)/std, layout."""
    height, width = c.input_size
    if c.color == "gray":
        image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    img = cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
    if c.color == "gray":
        img = img[:, :, None]
    elif c.color == "rgb":
        img = img[:, :, ::-1]
    x = (img.astype(np.float32) - np.float32(c.channel_values("mean"))) / np.float32(c.channel_values("std"))
    return (x.transpose(2, 0, 1) if c.layout == "nchw" else x)[None]


def test_card_round_trips_through_json():
    c = card(metrics={"top1": 0.99}, architecture={"name": "mobilenet_v2", "width": 0.5})
    again = ModelCard.from_json(c.to_json())
    assert again == c


@pytest.mark.parametrize("changes,message", [
    ({"task": "pose"}, "task"), ({"layout": "chw"}, "layout"), ({"color": "yuv"}, "color"),
    ({"labels": []}, "labels"), ({"std": (0.0, 1.0, 1.0)}, "std"), ({"mean": (1.0, 2.0)}, "mean"),
])
def test_invalid_cards_are_rejected(changes, message):
    with pytest.raises(UserError, match=message):
        card(**changes)


def test_foreign_card_data_is_a_user_error():
    with pytest.raises(UserError):
        ModelCard.from_json("{not json")
    with pytest.raises(UserError, match="missing"):
        ModelCard.from_dict({"task": "classify"})


@pytest.mark.parametrize("color", ["rgb", "bgr", "gray"])
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_preprocess_matches_its_definition(color, layout):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    extra = {"mean": (127.5,), "std": (64.0,)} if color == "gray" else {}
    c = card(color=color, layout=layout, **extra)
    out = preprocess(image, c)
    ref = reference(image, c)
    assert out.shape == ref.shape and out.dtype == np.float32
    assert np.abs(out - ref).max() <= 1e-5


def test_grey_and_bgra_inputs_are_converted():
    c = card()
    grey = np.full((10, 10), 200, np.uint8)
    bgra = np.dstack([np.full((10, 10), v, np.uint8) for v in (10, 20, 30, 255)])
    assert preprocess(grey, c).shape == (1, 3, 24, 40)
    out = preprocess(bgra, c)
    assert np.allclose(out[0, :, 0, 0], [(30 - 120) / 60, (20 - 110) / 50, (10 - 100) / 40], atol=1e-5)


def test_batch_equals_single_images():
    c = card(layout="nhwc")
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (30, 30, 3), dtype=np.uint8) for _ in range(3)]
    batch = preprocess_batch(images, c)
    assert np.allclose(batch, np.concatenate([preprocess(i, c) for i in images]))


def test_empty_image_is_a_user_error():
    with pytest.raises(UserError):
        preprocess(np.zeros((0, 0, 3), np.uint8), card())
