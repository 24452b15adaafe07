"""`edgecnn info` on converted files (.tflite, .onnx) with the device runtime alone."""
import json

import pytest

from conftest import assert_one_line_error, run_cli, run_cli_batch
from edgecnn.assets import RUNTIME_FP32, RUNTIME_INT8
from edgecnn.runtime.precision import file_precision
from make_float16_tflite import write
from runtime_fixtures import MODELS, detector_onnx, digits_onnx, int8_io_onnx, without_card

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


def test_info_on_tflite_shows_card_tensors_ops_and_head():
    result = run_cli("info", RUNTIME_FP32, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["format"] == "tflite" and info["card"]["task"] == "detect"
    assert info["head"] == {"name": "ltrb-sigmoid", "from": "card"}
    assert info["inputs"][0]["shape"] == [1, 3, 192, 192]
    assert sorted(tuple(s) for s in info["output_shapes"]) == sorted(
        [(1, 576, 4), (1, 144, 4), (1, 36, 4), (1, 576, 3), (1, 144, 3), (1, 36, 3)])
    assert info["ops"]["CONV_2D"] > 10 and info["quantization"]["precision"] == "fp32"
    text = run_cli("info", RUNTIME_FP32).stdout
    assert "head          ltrb-sigmoid (from the card)" in text and "CONV_2D" in text


def test_info_on_onnx_counts_ops_from_the_file_and_recognises_a_cardless_head(tmp_path):
    info = json.loads(run_cli("info", digits_onnx(), "--json").stdout)
    assert info["card"]["task"] == "classify" and info["head"] is None
    assert info["ops"]["Conv"] >= 30 and sum(info["ops"].values()) > info["ops"]["Conv"]
    plain = without_card(detector_onnx(), tmp_path / "plain.onnx")
    info = json.loads(run_cli("info", plain, "--json").stdout)
    assert info["card"] is None
    assert info["head"] == {"name": "ltrb-sigmoid", "from": "outputs", "candidates": ["ltrb-sigmoid"]}
    quantized = json.loads(run_cli("info", int8_io_onnx(), "--json").stdout)
    assert quantized["quantization"]["integer_io"] == 2 and quantized["inputs"][0]["dtype"] == "int8"
    assert quantized["inputs"][0]["quantization"] == [0.5, 3] and quantized["ops"] == {"Cast": 1, "Identity": 1}


def test_a_float16_tflite_file_is_fp16_not_int8(tmp_path):
    """Weights stored in float16 and dequantized to float32 (TensorFlow's float16 files,
    as MediaPipe and Ultralytics ship them): DEQUANTIZE ops, but nothing integer."""
    fixture = MODELS / "float16_conv.tflite"
    assert write(tmp_path / "made.tflite").read_bytes() == fixture.read_bytes()  # the committed file is the script's
    as_json, as_text = run_cli_batch(["info", fixture, "--json"], ["info", fixture])
    info = json.loads(as_json.stdout)
    assert info["card"] is None and info["ops"]["DEQUANTIZE"] == 4
    assert info["quantization"] == {"precision": "fp16", "integer_io": 0, "quantize_ops": 4}
    assert "precision     fp16 (0 integer input/output tensors" in as_text.stdout
    plain = without_card(detector_onnx(), tmp_path / "plain.onnx")
    for path, precision in ((fixture, "fp16"), (RUNTIME_FP32, "fp32"), (RUNTIME_INT8, "int8"),
                            (MODELS / "tf_ssd_uint8.tflite", "int8"), (plain, "fp32"), (int8_io_onnx(), "int8")):
        assert file_precision(str(path)) == precision, path


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_info_on_corrupt_truncated_or_foreign_files_is_one_line(tmp_path, suffix):
    source = RUNTIME_FP32 if suffix == ".tflite" else detector_onnx()
    cases = {"truncated": source.read_bytes()[:4000], "foreign": b"GIF89a" + bytes(300), "empty": b""}
    for name, data in cases.items():
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes(data)
        assert_one_line_error(run_cli("info", path))
    assert_one_line_error(run_cli("info", tmp_path / f"missing{suffix}"))
