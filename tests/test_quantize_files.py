"""`edgecnn quantize FILE.onnx`: onnxruntime's static int8 of an exported file, measured on
held-out data beside the fp32 file; kept with a card and a parity report within the
budget, refused (exit 3, nothing written) beyond it, as after a blank calibration set."""
import json

import numpy as np
import pytest

from conftest import run_cli_batch
from edgecnn.runtime.model_file import read_card
from runtime_fixtures import detector_onnx


@pytest.mark.slow(20)  # four held-out evaluations of 100 scenes
def test_quantize_an_onnx_file_keeps_it_within_budget_and_refuses_a_blank_calibration(tmp_path):
    import cv2

    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(32):
        cv2.imwrite(str(blank / f"{i}.png"), np.zeros((192, 192, 3), np.uint8))
    from edgecnn.data.detection import load_shapes_detection, write_yolo

    for split, count in (("train", 32), ("val", 100)):  # 100 held-out scenes: the gate's figures, not its speed
        write_yolo(load_shapes_detection(split, count=count), str(tmp_path / "scenes"), split)
    common = ["quantize", detector_onnx(), "--data", tmp_path / "scenes", "--calib-images", "32", "--json"]
    kept, refused = run_cli_batch([*common, "--max-drop", "5", "--out", tmp_path / "int8.onnx"],
                                  [*common, "--calib", blank, "--out", tmp_path / "blank.onnx"])
    assert kept.returncode == 0, kept.stderr
    summary = json.loads(kept.stdout)
    card = read_card(str(tmp_path / "int8.onnx"))
    assert card.precision == "int8" and card.metrics["map50_95"] == summary["int8"]["map50_95"]
    assert 0 <= card.metrics["drop_points"] <= 5 and summary["parity"]["agreement"] > 0.8
    assert json.loads((tmp_path / "int8.onnx.parity.json").read_text())["gate"]["passed"]
    assert refused.returncode == 3, refused.stderr
    assert "not written" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank", "int8.onnx", "int8.onnx.parity.json", "scenes"]
    assert summary["weight_bits"] == 8 and int8_weight_magnitude(tmp_path / "int8.onnx") > 64


@pytest.mark.slow(8)  # two static quantizations of the detector
def test_weight_bits_sets_the_range_of_the_int8_weights(tmp_path):
    import edgecnn
    from converters.quantize_onnx import prepare, quantize_file
    from edgecnn.data.detection import load_shapes_detection

    card = edgecnn.load(detector_onnx(), log=None).card
    images = load_shapes_detection("train", count=4).images
    prepare(detector_onnx(), str(tmp_path / "prepared.onnx"))
    largest = {}
    for bits in (7, 8):
        quantize_file(str(tmp_path / "prepared.onnx"), str(tmp_path / f"{bits}.onnx"), card, images, True, [], bits)
        largest[bits] = int8_weight_magnitude(tmp_path / f"{bits}.onnx")
    assert largest[7] <= 64 < largest[8] <= 128

    # on a CPU whose fast u8s8 kernel saturates, onnxruntime's exact_int8=auto keeps the
    # fast kernel for the 7-bit file only, and there it gives the exact kernel's outputs
    from edgecnn.runtime.backends import onnxruntime as ort_backend

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ort_backend, "exact_int8_kernel_needed", lambda: True)
        kernels = {bits: ort_backend.OnnxBackend(str(tmp_path / f"{bits}.onnx")).ran_on()["int8_kernel"]
                   for bits in (7, 8)}
    assert kernels == {7: "fast (int8 weights within 7 bits)", 8: "exact"}
    fast, exact = (edgecnn.load(str(tmp_path / "7.onnx"), backend=f"onnxruntime:exact_int8={switch}", log=None,
                                 verify=False)  # quantize_file alone writes no new card
                   for switch in ("off", "on"))
    for image in load_shapes_detection("val", count=4).images:
        blob = fast.preprocess(image)
        for ours, theirs in zip(fast.backend.infer(blob), exact.backend.infer(blob)):
            assert np.array_equal(ours, theirs)


def int8_weight_magnitude(path) -> int:
    """The largest |value| of the file's int8 initializers (its weights)."""
    import onnx
    from onnx import numpy_helper

    return max(int(np.abs(numpy_helper.to_array(t).astype(np.int64)).max())
               for t in onnx.load(str(path)).graph.initializer if t.data_type == onnx.TensorProto.INT8)


@pytest.mark.slow  # about 5 s: quantization, two evaluations and a parity check in a subprocess
def test_quantize_an_onnx_file_writes_the_int8_file_its_card_and_parity_report_only(tmp_path):
    import edgecnn
    from edgecnn.data.detection import DetectionSet, write_yolo
    from foreign_models import onnx_model, ultralytics_metadata
    from conftest import run_cli
    from edgecnn.runtime.integrity import weights_digest

    images = [np.full((64, 64, 3), 40 + 10 * i, np.uint8) for i in range(4)]
    for split in ("train", "val"):
        write_yolo(DetectionSet("t", split, ["a", "b"], images, [np.array([[22, 27, 42, 37]], np.float32)] * 4,
                                [np.array([0])] * 4), str(tmp_path / "data"), split)
    table = np.zeros((1, 6, 64 + 16 + 4), np.float32)
    table[0, :, 0] = [32, 32, 20, 10, 0.9, 0.1]
    source = onnx_model(tmp_path / "yolo.onnx", [1, 3, 64, 64], [table],
                        metadata=ultralytics_metadata(["a", "b"], (64, 64)))
    result = run_cli("quantize", source, "--data", tmp_path / "data", "--calib-images", "4", "--max-drop", "2",
                     "--out", tmp_path / "yolo-int8.onnx", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["gate"]["passed"] and summary["parity"]["agreement"] == 1.0
    model = edgecnn.load(str(tmp_path / "yolo-int8.onnx"))  # its weights checked against the digest it records
    assert model.card.weights_digest == weights_digest((tmp_path / "yolo-int8.onnx").read_bytes(), "onnx")
    assert model.card.precision == "int8" and model.card.head == {"format": "yolo-v8", "boxes": "pixels"}
    assert model.card.metrics["fp32_map50_95"] == summary["fp32"]["map50_95"]
    assert model.card.metrics["max_drop_points"] == 2.0  # the budget it passed, so a reader can check the gate
    assert "QuantizeLinear" in model.backend.op_counts()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "yolo-int8.onnx", "yolo-int8.onnx.parity.json",
                                                          "yolo.onnx"]


def test_weight_bits_is_for_onnx_files(tmp_path):
    from conftest import assert_one_line_error, run_cli

    result = run_cli("quantize", tmp_path / "model.pt", "--out", tmp_path / "q.pt2", "--weight-bits", "7")
    assert_one_line_error(result, contains="--weight-bits is for .onnx files")


def test_the_decode_after_the_last_convolution_stays_float():
    """One 8-bit scale over pixel boxes and 0..1 scores rounds the scores to zero: the
    nodes between the last weighted op and the output are excluded from quantization."""
    from onnx import TensorProto, helper, numpy_helper

    from converters.quantize_onnx import decode_tail

    weight = numpy_helper.from_array(np.ones((6, 3, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Conv", ["images", "w"], ["features"], name="head_conv"),
             helper.make_node("Split", ["features"], ["boxes", "logits"], axis=1, num_outputs=2, name="split"),
             helper.make_node("Sigmoid", ["logits"], ["scores"], name="sigmoid"),
             helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1, name="concat")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, None)], [weight])
    assert sorted(decode_tail(helper.make_model(graph))) == ["concat", "sigmoid", "split"]
    plain = helper.make_graph(nodes[1:3], "g", [helper.make_tensor_value_info("features", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)])
    assert decode_tail(helper.make_model(plain)) == []  # no convolution: nothing to keep apart


def test_the_int8_weight_range_is_read_from_weights_only():
    """onnx_wire.int8_weight_range (the runtime has no onnx package): the int8 inputs in a
    weight position (DequantizeLinear's first, QLinearConv's fourth), stored raw or as
    int32_data; not a zero point (an activation's -128 says nothing of the weights); None
    for weights in external data or a file without int8 weights."""
    from onnx import TensorProto, helper, numpy_helper

    from edgecnn.runtime.onnx_wire import int8_weight_range

    def model(weight_values, raw=True, external=False):
        weight = numpy_helper.from_array(np.array(weight_values, np.int8).reshape(-1, 1, 1, 1), "w")
        if not raw:
            weight = helper.make_tensor("w", TensorProto.INT8, [len(weight_values), 1, 1, 1], list(weight_values))
        if external:
            weight.data_location = TensorProto.EXTERNAL
            weight.external_data.add(key="location", value="w.bin")
            weight.ClearField("raw_data")
        qconv_weight = numpy_helper.from_array(np.array([[[[-60]]], [[[61]]]], np.int8), "qw")
        initializers = [weight, qconv_weight, numpy_helper.from_array(np.float32(0.1), "s"),
                        numpy_helper.from_array(np.int8(-128), "zp"), numpy_helper.from_array(np.int8(0), "wzp")]
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
                 helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
                 helper.make_node("DequantizeLinear", ["w", "s", "wzp"], ["wd"]),
                 helper.make_node("Conv", ["xd", "wd"], ["y"]),
                 helper.make_node("QLinearConv", ["xq", "s", "zp", "qw", "s", "wzp", "s", "zp"], ["y2"])]
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
        return helper.make_model(graph).SerializeToString()

    assert int8_weight_range(model([5, -64, 64])) == (-64, 64)  # the -128 zero point is not a weight
    assert int8_weight_range(model([100, -3])) == (-60, 100)  # with the QLinearConv's weight
    assert int8_weight_range(model([-90, 7], raw=False)) == (-90, 61)
    assert int8_weight_range(model([1, 2], external=True)) is None
    plain = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    assert int8_weight_range(helper.make_model(plain).SerializeToString()) is None
