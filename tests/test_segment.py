"""Segmentation, the training side: the models, the data loaders and their bad-label
reports, the mIoU evaluator, training, evaluation, int8 conversion and running."""
import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_one_line_error, run_cli, run_cli_batch
from edgecnn.core.errors import UserError
from edgecnn.data.detection import shapes_scene
from edgecnn.data.segmentation import load_segmentation, shapes_mask_scene
from edgecnn.models.segmenter import MobileNetSegmenter
from edgecnn.tasks.segment.metrics import ConfusionMatrix, iou_report
from edgecnn.training.train import TrainConfig, train


@pytest.mark.parametrize("backbone,decoder", [("mobilenet_v2", "lraspp"), ("mobilenet_v3_small", "lraspp"),
                                              ("mobilenet_v2", "unet"), ("mobilenet_v3_small", "unet")])
def test_segmenters_output_channel_last_scores_at_any_input_size(backbone, decoder):
    model = MobileNetSegmenter(4, backbone, 0.5, 3, decoder, 32)
    x = torch.randn(1, 3, 64, 88)
    assert model.train()(x).shape == (1, 4, 64, 88)  # logits for the loss
    with torch.no_grad():
        assert model.eval()(x).shape == (1, 64, 88, 4)  # channel-last for the deployed graph
        assert model(torch.randn(1, 3, 97, 70)).shape == (1, 97, 70, 4)
    assert all(conv.out_channels == 4 for conv in model.output_layers())


def test_shapes_masks_are_exact_and_match_the_detection_scenes():
    for index in range(5):
        image, mask = shapes_mask_scene(0, "val", index, 128)
        same_image, boxes, classes = shapes_scene(0, "val", index, 128)
        assert np.array_equal(image, same_image)
        for box, cls in zip(boxes.astype(int), classes):
            inside = mask[box[1]:box[3], box[0]:box[2]]
            assert (inside == cls + 1).any()  # each object's visible pixels carry its label
        assert set(np.unique(mask)) <= {0, *(c + 1 for c in classes)}


def write_pair(root, split, name, image, mask, palette=None):
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "masks" / split).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), image)
    picture = Image.fromarray(mask)
    if palette is not None:
        picture = picture.convert("P")
        picture.putpalette(palette)
    picture.save(root / "masks" / split / f"{name}.png")


def test_mask_folder_reads_indices_palettes_and_colours_and_names_bad_masks(tmp_path):
    root = tmp_path / "masks"
    (root).mkdir()
    (root / "labels.txt").write_text("background\nroad\ncar\n")
    image = np.full((20, 30, 3), 90, np.uint8)
    good = np.zeros((20, 30), np.uint8)
    good[5:10, 5:20], good[0, :] = 2, 255  # 255: ignored
    write_pair(root, "train", "a_good", image, good)
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [224, 224, 192] * 253
    write_pair(root, "train", "b_palette", image, good, palette)  # VOC style: indices behind a palette
    write_pair(root, "train", "c_small", image, good[:10])
    beyond = good.copy()
    beyond[3, 3] = 7
    write_pair(root, "train", "d_beyond", image, beyond)
    data = load_segmentation(str(root), "train")
    assert data.labels == ["background", "road", "car"] and len(data) == 2
    assert all(np.array_equal(m, good) for m in data.masks)
    problems = [str(p) for p in data.problems]
    assert "c_small.png: mask is 30x10, its image 30x20" in problems[0]
    assert "d_beyond.png" in problems[1] and "class index 7 beyond the 3 labels" in problems[1]
    with pytest.raises(UserError, match="c_small.png"):
        load_segmentation(str(root), "train", strict=True)
    # colour masks through data.yaml colors; a colour that matches no label is named
    colours = tmp_path / "colours"
    colours.mkdir()
    (colours / "data.yaml").write_text("names: [background, road, car]\ncolors: [[0, 0, 0], [128, 0, 0], [0, 128, 0]]\n")
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[5:10, 5:20] = (0, 128, 0)
    write_pair(colours, "val", "a_rgb", image, rgb)
    write_pair(colours, "val", "b_palette", image, good, palette)  # index 255 -> (224, 224, 192): no label
    data = load_segmentation(str(colours), "val")
    expected = np.zeros((20, 30), np.uint8)
    expected[5:10, 5:20] = 2
    assert len(data) == 1 and np.array_equal(data.masks[0], expected)
    assert "b_palette.png: colour (224, 224, 192) matches no label" in str(data.problems[0])
    (root / "masks" / "val").mkdir()
    (root / "images" / "val").mkdir()
    with pytest.raises(UserError, match="masks/val is empty"):
        load_segmentation(str(root), "val")


def test_yolo_seg_polygons_are_rasterised_and_bad_lines_named(tmp_path):
    root = tmp_path / "yoloseg"
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "data.yaml").write_text("names: [person, dog]\n")
    for name in ("a", "b"):
        cv2.imwrite(str(root / "images" / "train" / f"{name}.png"), np.zeros((40, 40, 3), np.uint8))
    (root / "labels" / "train" / "a.txt").write_text("1 0.25 0.25 0.75 0.25 0.75 0.75 0.25 0.75\n")
    (root / "labels" / "train" / "b.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.5\n2 0.1 0.1 0.2 0.2 0.3 0.1\n")
    data = load_segmentation(str(root), "train")
    assert data.labels == ["background", "person", "dog"] and len(data) == 1
    # corners at pixels 10 and 30: the polygon's boundary pixels are filled too
    assert (data.masks[0] == 2).sum() == 21 * 21 and (data.masks[0][10:31, 10:31] == 2).all()
    assert str(data.problems[0]).endswith("b.txt:2: class index 2 beyond the 2 classes")


def test_miou_comes_from_one_confusion_matrix_without_ignored_pixels():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 255]], np.uint8)
    found = np.array([[0, 1, 1, 1], [0, 0, 2, 2]], np.uint8)
    matrix = ConfusionMatrix(3)
    matrix.add(truth, found)
    report = iou_report(matrix.counts, ["bg", "a", "b"])
    ious = [c["iou"] for c in report["per_class"]]
    assert ious == pytest.approx([3 / 4, 2 / 4, 0.0])  # b: predicted once, never true
    assert report["miou"] == pytest.approx((0.75 + 0.5 + 0) / 3)
    assert report["pixel_accuracy"] == pytest.approx(5 / 7) and report["pixels"] == 7


@pytest.fixture(scope="module")
def tiny_segmenter(tmp_path_factory):
    """Trained on a small written copy of the scenes, so that eval and the converter's
    gate (which read the card's dataset) score 8 images, not the 300 of the shapes split."""
    from edgecnn.tasks.segment.training import write_shapes

    out = tmp_path_factory.mktemp("seg")
    for split, count in (("train", 24), ("val", 8)):
        write_shapes(str(out / "data"), split, 0, 96, count)
    train(TrainConfig(task="segment", model="mobilenet_v3_small", width=0.5, data=str(out / "data"), imgsz=96,
                      epochs=2, task_options={"progressive_from": 64},  # epoch 1 at 64x64, epoch 2 at 96x96
                      batch=8, out=str(out)), log=lambda m: None)
    return out / "last.pt"


@pytest.mark.slow(75)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_train_eval_convert_int8_and_run(tiny_segmenter, tmp_path):
    """A tiny segmenter: eval's table and PNG, a full-int8 TFLite file without TRANSPOSE
    or float tensors inside, and `edgecnn run` with masks in the JSON and the overlay saved."""
    from converters.parity import tflite_structure
    from edgecnn.runtime.backends import open_backend

    eval_result, convert_result = run_cli_batch(
        ["eval", tiny_segmenter, "--plot", tmp_path / "p.png"],
        ["convert", tiny_segmenter, "--to", "tflite", "--precision", "int8", "--out", tmp_path / "c",
         "--calib-images", "16", "--parity-images", "8", "--force", "--json"])
    assert eval_result.returncode == 0, eval_result.stderr
    assert "mIoU" in eval_result.stdout and "triangle" in eval_result.stdout
    assert cv2.imread(str(tmp_path / "p.png")) is not None
    assert convert_result.returncode == 0, convert_result.stderr
    path = json.loads(convert_result.stdout)[0]["file"]
    ops, transposes, floats = tflite_structure(path)
    assert transposes == 0 and floats == 0 and "DEQUANTIZE" not in ops  # int8 from input to output
    card = open_backend(path).card
    assert card.task == "segment" and card.precision == "int8" and "miou" in card.metrics
    result = run_cli("run", path, "--source", "demo", "--max-frames", "3", "--json", tmp_path / "r.jsonl",
                     "--save", tmp_path / "r.mp4")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["task"] == "segment" and r["rle"]["size"] == [96, 96] for r in records)
    assert sum(a["area"] for a in records[0]["areas"]) == records[0]["size"][0] * records[0]["size"][1]
    assert cv2.VideoCapture(str(tmp_path / "r.mp4")).read()[0]


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_segmentation_cli_writes_shapes_and_rejects_bad_options(tmp_path):
    shapes, *bad = run_cli_batch(
        ["shapes", "--task", "segment", "--out", tmp_path / "s", "--train", "3", "--val", "2", "--imgsz", "64",
         "--min-visible", "0.9"],
        *(["train", "--task", "segment", *args, "--out", tmp_path / "o"] for args in (
            ["--model", "resnet18"], ["--imgsz", "48"], ["--decoder", "fpn"], ["--tap", "block"],
            ["--progressive-from", "100"],
            ["--data", tmp_path / "nothing"])),
        ["train", "--decoder", "unet", "--out", tmp_path / "o"])
    assert shapes.returncode == 0, shapes.stderr
    data = load_segmentation(str(tmp_path / "s"), "val")
    assert data.labels == ["background", "circle", "rectangle", "triangle"] and len(data) == 2
    assert np.array_equal(data.masks[1], shapes_mask_scene(0, "val", 1, 64, min_visible=0.9)[1])
    for result, message in zip(bad, ["MobileNetV2 or V3", ">= 64", "--decoder", "for detectors", "steps of 32",
                                     "not found",
                                     "for segmenters"]):
        assert_one_line_error(result, contains=message)


def test_segment_records_follow_the_result_schema():
    from edgecnn.core.card import ModelCard
    from edgecnn.runtime.schema import records, validate
    from edgecnn.tasks.segment.task import segment

    card = ModelCard(task="segment", labels=["background", "circle"], input_size=(16, 16))
    scores = np.zeros((1, 16, 16, 2), np.float32)
    scores[0, 4:9, 4:12, 1] = 3.0
    masks = segment(card, [scores], (32, 48))
    for form in ("rle", "contours", "none"):
        record, = records(masks, masks=form)
        assert validate(record) == [], (form, validate(record))


def onnx_segmenter(path, weights, sigmoid=False, size=32):
    """An ONNX file without a card: one 1x1 convolution of the RGB input (NCHW scores)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.asarray(weights, np.float32)
    nodes = [helper.make_node("Conv", ["input", "w"], ["conv" if sigmoid else "scores"])]
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["conv"], ["scores"]))
    graph = helper.make_graph(
        nodes, "segmenter", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, len(weights), size, size])],
        [numpy_helper.from_array(weights.reshape(len(weights), 3, 1, 1), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_third_party_segmenters_run_with_flags(tmp_path):
    """DeepLab-style class scores (1, C, H, W) and a single probability map, no card:
    `edgecnn run --task segment` with flags, on a photo (exact areas) and on the real
    video with the overlay saved."""
    from conftest import DATA

    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = (255, 0, 0)  # blue (BGR)
    frame[:, 32:] = (0, 0, 255)  # red
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    scores = onnx_segmenter(tmp_path / "scores.onnx", np.eye(3))  # score of label k = channel k (RGB)
    person = onnx_segmenter(tmp_path / "person.onnx", [[4.0, 0.0, -4.0]], sigmoid=True)  # P = sigmoid(4 (R - B))
    flags = ["--source", tmp_path / "frame.png", "--task", "segment", "--mean", "0", "--std", "1"]
    cv2.imwrite(str(tmp_path / "black.png"), np.zeros((48, 64, 3), np.uint8))  # P = sigmoid(0) = 0.5 everywhere
    on_black = ["run", person, *flags[2:], "--source", tmp_path / "black.png", "--labels", "background,person"]
    first, second, video, missing, at_half, above, bad_threshold, not_segmenter = run_cli_batch(
        ["run", scores, *flags, "--labels", "red,green,blue", "--json", tmp_path / "a.jsonl", "--masks", "contours"],
        ["run", person, *flags, "--labels", "background,person", "--json", tmp_path / "b.jsonl"],
        ["run", person, *flags[2:], "--source", DATA / "tree.avi", "--labels", "background,person", "--max-frames",
         "5", "--save", tmp_path / "tree.mp4", "--json", tmp_path / "c.jsonl"],
        ["run", scores, "--source", tmp_path / "frame.png", "--task", "segment"],
        [*on_black, "--json", tmp_path / "d.jsonl"],
        [*on_black, "--mask-threshold", "0.7", "--json", tmp_path / "e.jsonl"],
        [*on_black, "--mask-threshold", "1.5"],
        ["run", "--source", tmp_path / "black.png", "--mask-threshold", "0.5"])
    for result, path, person_pixels in ((at_half, "d.jsonl", 48 * 64), (above, "e.jsonl", 0)):
        assert result.returncode == 0, result.stderr
        areas = {a["label"]: a["area"] for a in json.loads((tmp_path / path).read_text())["areas"]}
        assert areas.get("person", 0) == person_pixels, areas  # at the threshold counts as the object
    assert_one_line_error(bad_threshold, contains="between 0 and 1")
    assert_one_line_error(not_segmenter, contains="for segmenters")
    assert first.returncode == 0, first.stderr
    record = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])
    assert record["size"] == [48, 64]
    assert {a["label"]: a["area"] for a in record["areas"]} == {"red": 48 * 32, "blue": 48 * 32}
    assert [c["label"] for c in record["contours"]] == ["blue"]  # the first label is not outlined
    assert second.returncode == 0, second.stderr
    record = json.loads((tmp_path / "b.jsonl").read_text().splitlines()[0])
    person_area = {a["label"]: a for a in record["areas"]}["person"]
    assert person_area["area"] == 48 * 32 and person_area["confidence"] == pytest.approx(1.0, abs=1e-3)
    assert record["rle"]["size"] == [32, 32]
    assert video.returncode == 0, video.stderr
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 5
    assert cv2.VideoCapture(str(tmp_path / "tree.mp4")).read()[0]
    assert_one_line_error(missing, contains="--mean")
