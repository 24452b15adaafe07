"""Detectors and classifiers exported by other toolkits run with no flags: each output
layout (Ultralytics YOLOv8/11 raw, YOLOv5, end-to-end YOLO, TFLite SSD with its
post-processing op, jetson-inference SSD) is recognised from its shapes and metadata and
decoded exactly; files that fit no head, or contradict themselves, are one line, exit 2."""
import json

import numpy as np
import pytest

import edgecnn
from conftest import DATA, assert_one_line_error, run_cli
from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.runtime.card_options import CardOptions
from edgecnn.runtime.heads import get_head
from edgecnn.runtime.heads.tflite_ssd import classes_and_scores
from edgecnn.runtime.recognition import FileFacts, recognise_file
from foreign_models import (append_metadata, onnx_model, tflite_model, tflite_ssd, ultralytics_metadata,
                            ultralytics_tflite_metadata)

runtime = pytest.mark.runtime  # torch-free tests (TFLite files are written with the schema alone)

ANCHORS_64 = 64 + 16 + 4  # anchor points of a 64x64 input at strides 8, 16, 32
FRAME = np.zeros((64, 128, 3), np.uint8)  # letterboxed into 64x64: scale 0.5, 16 rows of pad above and below


def v8_table() -> np.ndarray:
    """[1, 4+2, 84]: two overlapping 'a' boxes (the weaker one suppressed by NMS), one 'b'."""
    table = np.zeros((1, 6, ANCHORS_64), np.float32)
    table[0, :, 0] = [32, 32, 20, 10, 0.9, 0.1]
    table[0, :, 1] = [33, 32, 20, 10, 0.8, 0.1]
    table[0, :, 2] = [20, 40, 8, 4, 0.2, 0.6]
    return table


# in the 64x128 frame: (corner - (0, 16)) / 0.5
V8_BOXES = [[44, 22, 84, 42], [32, 44, 48, 52]]


@runtime
def test_ultralytics_tflite_transposed_normalised_with_appended_metadata_runs_with_no_flags(tmp_path):
    table = v8_table().transpose(0, 2, 1) / np.array([64, 64, 64, 64, 1, 1], np.float32)
    path = tflite_model(tmp_path / "yolo11n_float32.tflite", [1, 64, 64, 3], [table])
    append_metadata(path, {"metadata.json": ultralytics_tflite_metadata(["a", "b"], (64, 64))})
    image = tmp_path / "frame.png"
    import cv2

    cv2.imwrite(str(image), FRAME)
    result = run_cli("run", path, "--source", image, "--json", "-")
    assert result.returncode == 0, result.stderr
    frame = json.loads(result.stdout.splitlines()[0])
    found = [(d["label"], [round(v, 3) for v in d["box"]], round(d["score"], 3)) for d in frame["detections"]]
    assert found == [("a", V8_BOXES[0], 0.9), ("b", V8_BOXES[1], 0.6)]
    model = edgecnn.load(str(path))
    assert model.card.head == {"format": "yolo-v8", "boxes": "normalised"} and model.card.layout == "nhwc"
    assert (model.card.mean, model.card.std) == ((0.0,), (255.0,))


@runtime
def test_a_truncated_metadata_zip_loads_without_it(tmp_path):
    table = v8_table().transpose(0, 2, 1) / np.array([64, 64, 64, 64, 1, 1], np.float32)
    path = tflite_model(tmp_path / "cut.tflite", [1, 64, 64, 3], [table])
    append_metadata(path, {"metadata.json": ultralytics_tflite_metadata(["a", "b"], (64, 64))}, truncate=30)
    model = edgecnn.load(str(path))
    assert model.card.labels == ["0", "1"]  # numbered: the names were in the lost part
    assert edgecnn.load(str(path), card=CardOptions(labels="x,y")).predict(FRAME).labels == ["x", "y"]
    assert_one_line_error(run_cli("run", path, "--source", "demo", "--max-frames", "1", "--labels", "x,y,z"),
                          contains="yolo-v8 head with 3 labels")


@runtime
@pytest.mark.parametrize("order", [("boxes", "classes", "scores", "count"), ("scores", "boxes", "count", "classes")])
def test_tflite_ssd_with_the_post_processing_op_in_either_output_order_and_uint8_input(tmp_path, order):
    # anchors (ycenter, xcenter, h, w); zero box encodings make each box its anchor
    anchors = np.array([[0.5, 0.5, 0.2, 0.4], [0.2, 0.2, 0.1, 0.1], [0.5, 0.52, 0.2, 0.4]], np.float32)
    scores = np.array([[0, 0.9, 0.1], [0, 0.1, 0.7], [0, 0.5, 0.1]], np.float32)  # background first
    path = tflite_ssd(tmp_path / "ssd.tflite", [1, 64, 64, 3], anchors, scores, order=order, uint8_quant=(1 / 128, 128))
    append_metadata(path, {"labelmap.txt": "cat\ndog\n"})  # TFLite Support metadata carries the label map
    model = edgecnn.load(str(path))
    assert model.card.head == {"format": "tflite-ssd"} and model.card.labels == ["cat", "dog"]
    assert (model.card.mean, model.card.std) == ((128.0,), (128.0,))  # uint8 input receives raw pixels
    found = model.predict(np.zeros((128, 64, 3), np.uint8))  # plain resize: x * 1, y * 2
    np.testing.assert_allclose(found.boxes, [[19.2, 51.2, 44.8, 76.8], [9.6, 19.2, 16, 32]], atol=1e-4)
    np.testing.assert_allclose(found.scores, [0.9, 0.7], atol=1e-6)
    assert found.classes.tolist() == [0, 1]  # the third candidate fell to the op's own NMS


@runtime
def test_an_ssd_from_tensorflows_own_converter_decodes_as_tensorflows_interpreter_does():
    """tests/data/models/tf_ssd_uint8.tflite: TensorFlow 2.20's converter wrote it with the
    real TFLite_Detection_PostProcess op, uint8 input and the count output first
    (benchmarks/foreign_ssd.py); beside it, the interpreter's detections on the first 8
    held-out scenes."""
    import cv2

    from edgecnn.data.detection import load_shapes_detection
    from edgecnn.tasks.detect.task import box_iou

    path = DATA / "models" / "tf_ssd_uint8.tflite"
    reference = np.load(path.with_suffix(".reference.npz"))
    model = edgecnn.load(str(path), conf_threshold=0.3, log=None,
                         card=CardOptions(labels="circle,rectangle,triangle"))
    assert model.card.head == {"format": "tflite-ssd"} and model.backend.input_dtype == np.uint8
    starts = np.r_[0, np.cumsum(reference["counts"])]
    scenes = load_shapes_detection("val", count=len(reference["counts"])).images
    matched = 0
    for i, scene in enumerate(scenes):
        found = model.predict(cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
        span = slice(starts[i], starts[i + 1])
        keep = reference["scores"][span] >= 0.3
        boxes = np.clip(reference["boxes"][span][keep][:, [1, 0, 3, 2]] * 192, 0, 192)
        assert len(found.boxes) == len(boxes)
        for box, score, cls in zip(found.boxes, found.scores, found.classes):
            j = int(np.argmax(box_iou(box, boxes)))
            assert box_iou(box, boxes)[j] >= 0.99 and abs(score - reference["scores"][span][keep][j]) <= 0.01
            assert cls == int(reference["classes"][span][keep][j])
            matched += 1
    assert matched >= 8  # the trained SSD finds the scenes' shapes


@runtime
@pytest.mark.parametrize("order", [(0, 1, 2, 3), (1, 3, 0, 2), (3, 0, 1, 2)])
def test_tflite_ssd_decodes_one_image_of_a_batch_whatever_output_comes_first(order):
    # eval hands the head each image's rows, batch dimension dropped: count [1] becomes a scalar
    card = ModelCard(task="detect", labels=["a", "b"], input_size=(100, 200), mean=(127.5,), std=(127.5,),
                     head={"format": "tflite-ssd"})
    ssd = [np.array([[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0, 0, 0, 0]]], np.float32),  # boxes
           np.array([[1.0, 0.0, 0.0]], np.float32), np.array([[0.9, 0.4, 0.0]], np.float32),  # classes, scores
           np.array([2.0], np.float32)]  # count
    outputs = [ssd[i] for i in order]
    for given in (outputs, [o[0] for o in outputs]):
        corners, scores = get_head("tflite-ssd").decode_above(card, given, 0.5)
        np.testing.assert_allclose(corners, [[40, 10, 120, 50]], atol=1e-4)
        np.testing.assert_allclose(scores, [[0, 0.9]], atol=1e-6)


@runtime
def test_ssd_classes_and_scores_are_told_apart_by_value():
    classes, scores = np.array([2.0, 0.0, 1.0]), np.array([0.9, 0.5, 0.4])
    assert classes_and_scores(scores, classes) == (classes, scores)  # whole numbers
    classes, scores = np.array([0.0, 1.0]), np.array([1.0, 0.0])  # whole, within 0..1: scores come sorted
    assert classes_and_scores(classes, scores)[0] is classes
    assert classes_and_scores(np.array([3.0]), np.array([1.0]))[0][0] == 3.0  # a class above 1


@runtime
def test_yolov5_scores_are_objectness_times_class_probability():
    card = ModelCard(task="detect", labels=["a", "b"], input_size=(64, 64), mean=(0,), std=(255,),
                     head={"format": "yolo-v5", "boxes": "pixels"})
    rows = np.array([[[32, 32, 20, 10, 0.5, 0.2, 0.8], [10, 10, 4, 4, 0.1, 1.0, 0.0]]], np.float32)
    corners, scores = get_head("yolo-v5").decode(card, [rows])
    np.testing.assert_allclose(corners, [[22, 27, 42, 37], [8, 8, 12, 12]])
    np.testing.assert_allclose(scores, [[0.1, 0.4], [0.1, 0.0]], atol=1e-6)
    assert len(get_head("yolo-v5").decode_above(card, [rows], 0.25)[0]) == 1


@runtime
def test_ambiguous_recognition_names_the_candidates_and_the_flag(monkeypatch):
    facts = FileFacts(format="onnx", input_shape=(1, 3, 64, 64), input_dtype="float32", input_quant=None,
                      output_shapes=[(1, 6, ANCHORS_64)], output_names=["output0"], input_size=(64, 64),
                      layout="nchw", channels=3)
    v8 = get_head("yolo-v8")
    monkeypatch.setattr("edgecnn.runtime.heads.all_heads", lambda: [v8, get_head("yolo-v5"), v8])
    monkeypatch.setattr(get_head("yolo-v5"), "recognise", lambda facts, name: {"head": {"format": "yolo-v5"}})
    with pytest.raises(UserError, match=r"fit several detector heads \(yolo-v5, yolo-v8\); pick one with --head"):
        recognise_file(facts, "m.onnx")
    assert recognise_file(facts, "m.onnx", {"format": "yolo-v8"})["head"]["format"] == "yolo-v8"


# ---- ONNX files (written with the onnx package)


def test_ultralytics_onnx_raw_head_runs_with_no_flags_and_decodes_exactly(tmp_path):
    path = onnx_model(tmp_path / "yolo11n.onnx", [1, 3, 64, 64], [v8_table()],
                      metadata=ultralytics_metadata(["a", "b"], (64, 64)))
    model = edgecnn.load(str(path))
    assert model.card.head == {"format": "yolo-v8", "boxes": "pixels"} and model.card.labels == ["a", "b"]
    found = model.predict(FRAME)
    np.testing.assert_allclose(found.boxes, V8_BOXES, atol=1e-4)
    np.testing.assert_allclose(found.scores, [0.9, 0.6], atol=1e-6)
    transposed = onnx_model(tmp_path / "t.onnx", [1, 3, 64, 64], [v8_table().transpose(0, 2, 1)])
    again = edgecnn.load(str(transposed), card=CardOptions(labels="a,b")).predict(FRAME)
    np.testing.assert_allclose(again.boxes, V8_BOXES, atol=1e-4)
    info = json.loads(run_cli("info", path, "--json").stdout)
    assert info["head"]["name"] == "yolo-v8" and info["head"]["from"] == "exporter metadata and outputs"


def test_end_to_end_yolo_applies_no_nms_and_yolov5_is_told_from_v8_by_anchor_count(tmp_path):
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, 0] = [22, 27, 42, 37, 0.9, 1]
    rows[0, 1] = [23, 27, 43, 37, 0.8, 1]  # overlaps the first: an end-to-end head keeps both
    path = onnx_model(tmp_path / "yolo26n.onnx", [1, 3, 64, 64], [rows],
                      metadata=ultralytics_metadata(["a", "b"], (64, 64), end2end=True))
    found = edgecnn.load(str(path)).predict(FRAME)
    np.testing.assert_allclose(found.boxes, [[44, 22, 84, 42], [46, 22, 86, 42]], atol=1e-4)
    assert found.classes.tolist() == [1, 1]
    v5 = np.zeros((1, 3 * ANCHORS_64, 7), np.float32)
    v5[0, 5] = [32, 32, 20, 10, 0.5, 0.2, 0.8]
    path = onnx_model(tmp_path / "yolov5n.onnx", [1, 3, 64, 64], [v5], metadata={"stride": "32",
                                                                                 "names": "{0: 'a', 1: 'b'}"})
    model = edgecnn.load(str(path))
    assert model.card.head["format"] == "yolo-v5"
    found = model.predict(FRAME)
    np.testing.assert_allclose(found.boxes, [V8_BOXES[0]], atol=1e-4)
    np.testing.assert_allclose(found.scores, [0.4], atol=1e-6)


@runtime
@pytest.mark.parametrize("scale", [1.0, 64.0], ids=["normalised", "pixels"])
def test_end_to_end_yolo_tflite_boxes_are_read_normalised_or_in_pixels_by_their_values(tmp_path, scale):
    # Ultralytics 8.4's own TFLite export writes pixel boxes in end-to-end files; others normalise
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, 0] = [22 / 64 * scale, 27 / 64 * scale, 42 / 64 * scale, 37 / 64 * scale, 0.9, 1]
    rows[0, 1:, :4] = [0.1 * scale, 0.1 * scale, 0.2 * scale, 0.2 * scale]  # the rows below the threshold
    path = tflite_model(tmp_path / "yolo26n_float32.tflite", [1, 64, 64, 3], [rows])
    append_metadata(path, {"metadata.json": ultralytics_tflite_metadata(["a", "b"], (64, 64))})
    model = edgecnn.load(str(path))
    assert model.card.head == {"format": "yolo-end2end", "boxes": "auto"}
    found = model.predict(FRAME)
    np.testing.assert_allclose(found.boxes, [[44, 22, 84, 42]], atol=1e-3)
    assert found.classes.tolist() == [1]


def test_jetson_ssd_onnx_background_first(tmp_path):
    scores = np.array([[[0.1, 0.8, 0.1], [0.9, 0.05, 0.05]]], np.float32)
    boxes = np.array([[[0.25, 0.5, 0.75, 1.0], [0, 0, 1, 1]]], np.float32)
    path = onnx_model(tmp_path / "ssd-mobilenet.onnx", [1, 3, 32, 32], [scores, boxes], names=["scores", "boxes"])
    model = edgecnn.load(str(path))
    assert model.card.head["format"] == "ssd-jetson" and model.card.labels == ["1", "2"]
    found = model.predict(np.zeros((100, 200, 3), np.uint8))
    np.testing.assert_allclose(found.boxes, [[50, 50, 150, 100]], atol=1e-4)
    named = edgecnn.load(str(path), card=CardOptions(labels="BACKGROUND,cat,dog")).predict(np.zeros((32, 32, 3), np.uint8))
    assert [d.label for d in named] == ["cat"]


def test_files_that_fit_no_head_or_contradict_themselves_are_one_line(tmp_path):
    odd = onnx_model(tmp_path / "odd.onnx", [1, 3, 64, 64], [np.zeros((1, 7, 9), np.float32)])
    result = run_cli("run", odd, "--source", "demo", "--max-frames", "1")
    assert_one_line_error(result, contains="has no model card")
    assert "(1, 7, 9)" in result.stderr and "--head" in result.stderr and "--preset" in result.stderr
    wrong_names = onnx_model(tmp_path / "names.onnx", [1, 3, 64, 64], [v8_table()],
                             metadata=ultralytics_metadata(["a", "b", "c"], (64, 64)))
    wrong_size = onnx_model(tmp_path / "size.onnx", [1, 3, 64, 64], [v8_table()],
                            metadata=ultralytics_metadata(["a", "b"], (640, 640)))
    for path, message in ((wrong_names, "metadata names 3 classes"), (wrong_size, "imgsz [640, 640]")):
        assert_one_line_error(run_cli("run", path, "--source", "demo", "--max-frames", "1"), contains=message)


def test_third_party_classifier_with_the_imagenet_preset(tmp_path):
    logits = np.array([[0.1, 2.0, 0.3]], np.float32)
    path = onnx_model(tmp_path / "resnet.onnx", [1, 3, 32, 32], [logits])
    assert_one_line_error(run_cli("run", path, "--source", "demo", "--max-frames", "1"), contains="--preset")
    model = edgecnn.load(str(path), card=CardOptions(preset="imagenet", labels="x,y,z"))
    assert model.task == "classify" and model.card.mean == (123.675, 116.28, 103.53)
    assert model.predict(np.zeros((32, 32, 3), np.uint8)).top(1)[0][0] == "y"


def test_integer_io_of_a_cardless_onnx_file_uses_the_files_own_parameters(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgecnn.runtime.backends import open_backend

    table = np.array([[1.0, 2.5, -1.0]], np.float32)
    inits = [numpy_helper.from_array(np.array(1 / 255, np.float32), "s_in"),
             numpy_helper.from_array(np.array(0, np.uint8), "z_in"),
             numpy_helper.from_array(np.array(0.5, np.float32), "s_out"),
             numpy_helper.from_array(np.array(3, np.int8), "z_out"),
             numpy_helper.from_array(np.zeros((), np.float32), "zero"), numpy_helper.from_array(table, "table")]
    nodes = [helper.make_node("DequantizeLinear", ["images", "s_in", "z_in"], ["x"]),
             helper.make_node("ReduceMean", ["x"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Add", ["table", "nothing"], ["scores_f"]),
             helper.make_node("QuantizeLinear", ["scores_f", "s_out", "z_out"], ["scores"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("scores", TensorProto.INT8, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "int8-io.onnx"))
    backend = open_backend(str(tmp_path / "int8-io.onnx"))
    assert backend.input_quant == (pytest.approx(1 / 255), 0) and backend.output_quant == [(0.5, 3)]
    np.testing.assert_allclose(backend.infer(np.zeros((1, 3, 8, 8), np.float32))[0], table)
    model = edgecnn.load(str(tmp_path / "int8-io.onnx"), card=CardOptions(preset="unit", labels="a,b,c"))
    assert model.predict(np.zeros((8, 8, 3), np.uint8)).top(1)[0][0] == "b"


@runtime
def test_nms_caps_the_detections_after_suppression_not_the_candidates_before():
    from edgecnn.tasks.detect.task import postprocess

    crowd = np.tile(np.array([[10, 10, 50, 50]], np.float32), (120, 1))  # 120 candidates of one object
    spread = np.array([[100 + 12 * i, 200, 110 + 12 * i, 210] for i in range(40)], np.float32)  # 40 apart
    corners = np.concatenate([crowd, spread])
    scores = np.concatenate([np.linspace(0.99, 0.9, 120), np.linspace(0.8, 0.5, 40)]).astype(np.float32)[:, None]
    found = postprocess(corners, scores, ["a"], (640, 640), (640, 640), 0.25, 0.7, 100)
    assert len(found) == 41 and found.scores[0] == pytest.approx(0.99)
    assert len(postprocess(corners, scores, ["a"], (640, 640), (640, 640), 0.25, 0.7, 10)) == 10


# ---- Ultralytics YOLO-seg, read as a semantic segmenter

def seg_outputs() -> tuple:
    """A [1, 4+2+2, 84] table and [1, 2, 16, 16] prototypes (64x64 input). 'a' at 0.9 with
    mask plane 0 (positive everywhere); a near copy of it at 0.8 that NMS suppresses;
    'b' at 0.6 with plane 1 (positive left of x = 32 only), overlapping 'a'; one
    candidate below the threshold."""
    table = np.zeros((1, 8, ANCHORS_64), np.float32)
    table[0, :, 0] = [32, 32, 20, 10, 0.9, 0.1, 1, 0]  # x 22..42, y 27..37
    table[0, :, 1] = [33, 32, 20, 10, 0.8, 0.1, 1, 0]  # suppressed; would add column 42
    table[0, :, 2] = [28, 35, 16, 10, 0.2, 0.6, 0, 1]  # x 20..36, y 30..40, mask cut at x 32
    table[0, :, 3] = [10, 10, 8, 8, 0.1, 0.2, 1, 0]  # below 0.25
    protos = np.zeros((1, 2, 16, 16), np.float32)
    protos[0, 0] = 10
    protos[0, 1, :, :8], protos[0, 1, :, 8:] = 10, -10
    return table, protos


def expected_seg_map() -> np.ndarray:
    """Pixel centres inside each box and its mask, the more confident 'a' on top."""
    labels = np.zeros((64, 64), np.uint8)
    labels[30:40, 20:32] = 2
    labels[27:37, 22:42] = 1
    return labels


def test_ultralytics_yolo_seg_onnx_runs_as_a_segmenter_with_no_flags(tmp_path):
    table, protos = seg_outputs()
    path = onnx_model(tmp_path / "yolo11n-seg.onnx", [1, 3, 64, 64], [table, protos],
                      metadata=ultralytics_metadata(["a", "b"], (64, 64), task="segment"))
    model = edgecnn.load(str(path))
    assert model.card.task == "segment" and model.card.labels == ["background", "a", "b"]
    assert model.card.head == {"format": "yolo-seg", "preprocessing": "letterbox", "boxes": "pixels"}
    square = model.predict(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_array_equal(square.class_map, expected_seg_map())
    wide = model.predict(FRAME)  # letterboxed: rows 16..48 of the input cover the frame
    np.testing.assert_array_equal(wide.model_map, expected_seg_map()[16:48])
    assert wide.class_map.shape == (64, 128)
    assert model.task_spec.agreement(model.card, [table, protos], [table, protos], [(64, 64)]) == 1.0


@runtime
def test_ultralytics_yolo_seg_tflite_reversed_outputs_nhwc_prototypes_normalised_boxes(tmp_path):
    table, protos = seg_outputs()
    table = table.transpose(0, 2, 1) / np.array([64, 64, 64, 64, 1, 1, 1, 1], np.float32)
    path = tflite_model(tmp_path / "yolo11n-seg_float32.tflite", [1, 64, 64, 3], [protos.transpose(0, 2, 3, 1), table])
    append_metadata(path, {"metadata.json": ultralytics_tflite_metadata(["a", "b"], (64, 64), task="segment")})
    image = tmp_path / "frame.png"
    import cv2

    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    result = run_cli("run", path, "--source", image, "--json", "-", "--masks", "rle")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    from edgecnn.tasks.segment.result import decode_run_lengths

    np.testing.assert_array_equal(decode_run_lengths(record["rle"]["runs"], tuple(record["rle"]["size"])),
                                  expected_seg_map())
    assert [a["label"] for a in record["areas"]] == ["background", "a", "b"]


def test_yolo_seg_label_counts_that_disagree_are_one_line(tmp_path):
    table, protos = seg_outputs()
    path = onnx_model(tmp_path / "seg.onnx", [1, 3, 64, 64], [table, protos],
                      metadata=ultralytics_metadata(["a", "b", "c"], (64, 64), task="segment"))
    assert_one_line_error(run_cli("run", path, "--source", "demo", "--max-frames", "1"),
                          contains="metadata names 3 classes")
    bare = onnx_model(tmp_path / "bare.onnx", [1, 3, 64, 64], [table, protos])
    assert edgecnn.load(str(bare)).card.labels == ["background", "0", "1"]
    assert edgecnn.load(str(bare), card=CardOptions(labels="x,y")).card.labels == ["background", "x", "y"]
    assert_one_line_error(run_cli("run", bare, "--source", "demo", "--max-frames", "1", "--labels", "x,y,z"),
                          contains="yolo-seg head with 3 classes")
