"""The OpenVINO backend: the bundled detector's fp32 and int8 TFLite files and its ONNX
export give LiteRT's and onnxruntime's float32 outputs in the model's order, with the
card and int8 parameters read from the file; options reach the compiled model; bad
options, absent devices and files OpenVINO cannot read are one line."""
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from edgecnn.assets import RUNTIME_FP32, RUNTIME_INT8
from edgecnn.core.errors import UserError
from edgecnn.core.preprocess import preprocess
from edgecnn.data.detection import shapes_scene
from edgecnn.runtime.backends import backends_for, open_backend, parse_backend
from make_float16_tflite import float16_reference
from runtime_fixtures import MODELS, detector_onnx, int8_io_onnx

FLOAT16_TFLITE = MODELS / "float16_conv.tflite"


def scene_blobs(card, count=4):
    return [preprocess(shapes_scene(0, "val", i)[0], card) for i in range(count)]


@pytest.mark.parametrize("path, reference", [(RUNTIME_FP32, "litert"), (detector_onnx(), "onnxruntime")])
def test_fp32_files_give_the_reference_backends_outputs_in_their_order(path, reference):
    ours, theirs = open_backend(str(path), "openvino"), open_backend(str(path), reference)
    assert ours.card == theirs.card and ours.card is not None and ours.metadata == theirs.metadata
    assert ours.output_names == theirs.output_names and ours.input_shape == theirs.input_shape
    assert ours.input_dtype == np.float32 and ours.output_quant == [None] * 6
    for blob in scene_blobs(ours.card):
        for mine, wanted in zip(ours.infer(blob), theirs.infer(blob)):
            assert mine.dtype == np.float32 and mine.shape == wanted.shape
            np.testing.assert_allclose(mine, wanted, rtol=1e-4, atol=1e-4)
    assert ours.ran_on() == {"backend": "openvino", "devices": ["CPU"], "requested_device": "CPU",
                             "precision": "fp32", "requested_precision": "fp32", "exact_int8": False}


def test_int8_tflite_takes_int8_input_quantized_with_the_files_own_parameters():
    """OpenVINO presents the full-int8 file's input and score outputs as int8, as LiteRT
    does; their scale and zero point come from the flatbuffer. With the quantized layers
    in float32 arithmetic nearly every score lies within two quantization steps of
    LiteRT's (LiteRT's own reference kernels differ from XNNPACK by more at the worst
    element: benchmarks/openvino_results.md)."""
    ours, lite = open_backend(str(RUNTIME_INT8), "openvino:exact_int8=on"), open_backend(str(RUNTIME_INT8))
    assert ours.input_dtype == np.int8 and ours.input_quant == lite.input_quant
    assert ours.input_quant[1] == 0 and 0 < ours.input_quant[0] < 0.01
    assert ours.output_names == lite.output_names and ours.output_quant == lite.output_quant
    assert ours.output_quant[:3] == [None] * 3 and ours.output_quant[3] == (0.00390625, -128)
    assert ours.card == lite.card and ours.ran_on()["exact_int8"] is True
    step = ours.output_quant[3][0]
    steps = []
    for blob in scene_blobs(ours.card):
        mine, wanted = ours.infer(blob), lite.infer(blob)
        steps += [np.abs(m - w).ravel() / step for m, w in zip(mine[3:], wanted[3:])]
    steps = np.concatenate(steps)
    assert (steps <= 2 + 1e-6).mean() >= 0.99, np.percentile(steps, [50, 99, 100])


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_exact_int8_follows_the_cpu_unless_named(monkeypatch):
    from edgecnn.runtime.backends import openvino

    for saturates in (True, False):
        monkeypatch.setattr(openvino, "exact_int8_needed", lambda: saturates)
        assert open_backend(str(RUNTIME_INT8), "openvino").ran_on()["exact_int8"] is saturates
        assert open_backend(str(RUNTIME_FP32), "openvino").ran_on()["exact_int8"] is False  # no int8 layers
    assert open_backend(str(RUNTIME_INT8), "openvino:exact_int8=off").ran_on()["exact_int8"] is False


def test_int8_onnx_io_uses_the_cards_parameters_like_onnxruntime():
    ours, theirs = open_backend(str(int8_io_onnx()), "openvino"), open_backend(str(int8_io_onnx()))
    assert ours.input_dtype == np.int8 and ours.input_quant == (0.5, 3) == theirs.input_quant
    assert ours.output_quant == theirs.output_quant == [None, (0.25, 1)]
    blob = np.linspace(-80, 80, 48, dtype=np.float32).reshape(1, 3, 4, 4)
    for mine, wanted in zip(ours.infer(blob), theirs.infer(blob)):
        np.testing.assert_array_equal(mine, wanted)


def test_float16_tflite_computes_in_float32_as_litert_does():
    image = np.random.default_rng(3).normal(0, 1, (1, 16, 16, 3)).astype(np.float32)
    ours = open_backend(str(FLOAT16_TFLITE), "openvino")
    assert ours.ran_on()["requested_precision"] == "fp32"  # the graph dequantizes its weights to float32
    np.testing.assert_allclose(ours.infer(image)[0], float16_reference(image), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(open_backend(str(FLOAT16_TFLITE), "litert").infer(image)[0],
                               float16_reference(image), rtol=1e-5, atol=1e-5)


def test_options_reach_the_compiled_model(tmp_path):
    cache = tmp_path / "compiled"
    backend = open_backend(str(RUNTIME_FP32), f"openvino:hint=throughput,cache={cache}", threads=1)
    assert backend.compiled.get_property("INFERENCE_NUM_THREADS") == 1 and backend.threads == 1
    assert str(backend.compiled.get_property("PERFORMANCE_HINT")).endswith("THROUGHPUT")
    assert any(cache.iterdir())  # the compiled model was stored for the next load
    assert open_backend(str(RUNTIME_FP32), "openvino:precision=bf16").ran_on()["requested_precision"] == "bf16"
    spread = open_backend(str(RUNTIME_FP32), "openvino:device=AUTO:CPU", threads=2)
    assert spread.ran_on()["devices"] == ["CPU"] and spread.ran_on()["requested_device"] == "AUTO:CPU"
    assert parse_backend("openvino:device=AUTO:CPU,hint=latency").options == {"device": "AUTO:CPU",
                                                                             "hint": "latency"}


def test_openvino_is_offered_for_both_formats_after_the_defaults():
    assert backends_for("m.onnx")[0] == "onnxruntime" and "openvino" in backends_for("m.onnx")
    assert backends_for("m.tflite")[0] == "litert" and "openvino" in backends_for("m.tflite")


def test_run_on_the_demo_source_with_openvino():
    for path in (RUNTIME_INT8, detector_onnx()):
        result = run_cli("run", path, "--backend", "openvino", "--source", "demo", "--max-frames", "5", check=True)
        frames = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(frames) == 5 and all(frame["task"] == "detect" for frame in frames)
        assert sum(len(frame["detections"]) for frame in frames) >= 5 and "openvino" in result.stderr


def test_an_absent_device_is_one_line_naming_the_devices_present():
    import openvino

    present = openvino.Core().available_devices
    absent = next(name for name in ("GPU", "NPU", "GPU.7") if name not in present)
    result = run_cli("run", RUNTIME_FP32, "--backend", f"openvino:device={absent}", "--source", "demo",
                     "--max-frames", "1")
    assert_one_line_error(result, 2, f"{absent} is not present here; OpenVINO sees {', '.join(present)}")


@pytest.mark.parametrize("spec, message", [
    ("openvino:hint=fast", "option hint: expected latency or throughput"),
    ("openvino:precision=int4", "option precision: expected fp32 or fp16 or bf16"),
    ("openvino:exact_int8=maybe", "option exact_int8: expected auto, on or off"),
    ("openvino:device=FOO:CPU", "FOO is not a device OpenVINO spreads models with"),
    ("openvino:threads=2", "has no option 'threads'; known: device, hint, precision, cache, exact_int8"),
])
def test_bad_options_are_one_line(spec, message):
    with pytest.raises(UserError, match=message):
        parse_backend(spec)


def test_bad_option_on_the_command_line_is_exit_2():
    result = run_cli("run", RUNTIME_FP32, "--backend", "openvino:hint=fast", "--source", "demo", "--max-frames", "1")
    assert_one_line_error(result, 2, "option hint: expected latency or throughput")


def test_files_openvino_cannot_read_are_one_line(tmp_path):
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(RUNTIME_FP32.read_bytes()[:4000])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not onnx" * 100)
    for path, message in ((truncated, "corrupt or truncated TFLite file"), (garbage, "corrupt ONNX file"),
                          (MODELS / "tf_ssd_uint8.tflite", "No translator found for TFLite_Detection_PostProcess")):
        with pytest.raises(UserError, match=message):
            open_backend(str(path), "openvino")
    assert_one_line_error(run_cli("run", garbage, "--backend", "openvino", "--source", "demo", "--max-frames", "1"),
                          2, str(garbage))
