"""Segmentation on the device side (torch-free): reading score maps in every layout,
undoing the letterbox, the Masks result's JSON forms and its overlay."""
import cv2
import numpy as np
import pytest

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.task import get_task
from edgecnn.tasks.segment.result import decode_run_lengths, run_lengths
from edgecnn.tasks.segment.task import segment

pytestmark = pytest.mark.runtime
LABELS = ["background", "circle", "rectangle", "triangle"]


def card(size=(32, 32), **head):
    return ModelCard(task="segment", labels=LABELS[:head.pop("labels", 4)], input_size=size, head=head)


def one_hot_scores(class_map, labels=4):
    """(1, H, W, labels) logits whose argmax is class_map."""
    return (np.eye(labels, dtype=np.float32)[class_map] * 4 - 2)[None]


def test_channel_last_and_channel_first_scores_give_the_same_map():
    truth = np.zeros((32, 32), np.uint8)
    truth[4:12, 6:20], truth[20:30, 2:9] = 2, 3
    nhwc = one_hot_scores(truth)
    for outputs in ([nhwc], [nhwc.transpose(0, 3, 1, 2)]):
        masks = segment(card(), outputs, (32, 32))
        assert np.array_equal(masks.class_map, truth)
    assert masks.confidence is not None and np.isnan(masks.confidence[1])  # circle absent
    assert masks.confidence[2] == pytest.approx(np.exp(2) / (np.exp(2) + 3 * np.exp(-2)), rel=1e-5)


def test_letterbox_padding_is_cropped_and_the_map_scaled_to_the_frame():
    """A 64x32 frame letterboxed into 32x32: rows 8..23 of the map hold it."""
    model_map = np.zeros((32, 32), np.uint8)
    model_map[:8], model_map[24:] = 3, 3  # the padding: must not reach the frame
    model_map[8:24, 16:] = 1  # the frame's right half
    masks = segment(card(preprocessing="letterbox"), [one_hot_scores(model_map)], (32, 64))
    assert masks.model_map.shape == (16, 32) and masks.class_map.shape == (32, 64)
    assert not (masks.class_map == 3).any()
    assert (masks.class_map[:, 32:] == 1).all() and (masks.class_map[:, :32] == 0).all()
    assert masks.fractions.tolist() == [0.5, 0.5, 0.0, 0.0]


def test_single_probability_map_is_thresholded():
    probability = np.zeros((1, 1, 8, 8), np.float32)
    probability[0, 0, :, 4:] = 0.7
    masks = segment(card((8, 8), labels=2), [probability], (8, 8))
    assert masks.class_map[:, 4:].all() and not masks.class_map[:, :4].any()
    assert masks.confidence.tolist() == pytest.approx([1.0, 0.7])
    stricter = segment(card((8, 8), labels=2, threshold=0.8), [probability.transpose(0, 2, 3, 1)], (8, 8))
    assert not stricter.class_map.any()
    logits = np.where(probability > 0.5, 1.0, -3.0).astype(np.float32)  # sigmoid(1) = 0.73
    assert np.array_equal(segment(card((8, 8), labels=2), [logits[:, 0]], (8, 8)).class_map, masks.class_map)


def test_output_shapes_are_checked_with_one_line():
    task = get_task("segment")
    task.check_outputs(card(), [(1, 32, 32, 4)], "m.tflite")
    task.check_outputs(card(), [(1, 4, 16, 16)], "m.onnx")
    task.check_outputs(card(labels=2), [(1, 32, 32)], "m.onnx")
    for shapes in ([(1, 32, 32, 5)], [(1, 32, 32, 4), (1, 10)], [(1, 100)]):
        with pytest.raises(UserError, match="segmenter with 4 labels"):
            task.check_outputs(card(), shapes, "m.onnx")
    with pytest.raises(UserError, match="threshold"):
        card(threshold=1.5)


def test_run_lengths_round_trip_and_json_forms():
    rng = np.random.default_rng(0)
    model_map = np.zeros((24, 24), np.uint8)
    cv2.circle(model_map, (8, 8), 5, 1, -1)
    cv2.rectangle(model_map, (12, 14), (22, 20), 2, -1)
    assert np.array_equal(decode_run_lengths(run_lengths(model_map), model_map.shape), model_map)
    noise = rng.integers(0, 4, (5, 7)).astype(np.uint8)
    assert np.array_equal(decode_run_lengths(run_lengths(noise), noise.shape), noise)
    masks = segment(card((24, 24)), [one_hot_scores(model_map)], (48, 96))
    record = masks.to_dict()
    assert record["task"] == "segment" and record["size"] == [48, 96]
    areas = {a["label"]: a["area"] for a in record["areas"]}
    assert sum(areas.values()) == 48 * 96 and areas["circle"] == 8 * int((model_map == 1).sum())
    assert record["rle"]["size"] == [24, 24]
    assert np.array_equal(decode_run_lengths(record["rle"]["runs"], (24, 24)), model_map)
    contours = masks.to_dict(masks="contours")["contours"]
    assert [c["label"] for c in contours] == ["circle", "rectangle"] and "rle" not in masks.to_dict(masks="contours")
    rectangle = np.asarray(contours[1]["polygons"][0]).reshape(-1, 2)
    assert rectangle[:, 0].min() == pytest.approx(12.5 * 4) and rectangle[:, 1].max() == pytest.approx(20.5 * 2)
    bare = masks.to_dict(masks="none")
    assert "rle" not in bare and "contours" not in bare and bare["areas"] == record["areas"]
    with pytest.raises(ValueError):
        masks.to_dict(masks="png")


def test_iteration_and_overlay_touch_only_labelled_pixels():
    model_map = np.zeros((16, 16), np.uint8)
    model_map[2:6, 2:14] = 1
    masks = segment(card((16, 16)), [one_hot_scores(model_map)], (64, 64))
    items = list(masks)
    assert [i.label for i in items] == ["background", "circle"]
    assert items[1].box == (8.0, 8.0, 56.0, 24.0) and items[1].score == pytest.approx(48 / 256)
    frame = np.full((64, 64, 3), 100, np.uint8)
    canvas = frame.copy()
    masks.draw(canvas)
    changed = (canvas != frame).any(-1)
    assert changed[8:24, 8:56].all()
    assert not changed[30:, :].any()  # background untouched (the legend sits at the top left)
