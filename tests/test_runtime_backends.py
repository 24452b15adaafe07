"""Backends: both file formats behind one interface, quantized inputs and outputs,
and one-line errors for files that cannot be run."""
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from edgecnn.assets import RUNTIME_FP32
from edgecnn.core.card import ModelCard
from edgecnn.data.detection import shapes_scene
from edgecnn.core.errors import UserError
from edgecnn.runtime.backends import backends_for, dequantize, open_backend, quantize
from edgecnn.runtime.backends.onnxruntime import onnx_providers
from edgecnn.runtime.model_file import read_card
from edgecnn.core.preprocess import preprocess
from runtime_fixtures import detector_onnx, int8_io_onnx

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


def test_tflite_and_onnx_give_the_same_outputs_in_the_same_order():
    lite, onnx_model = open_backend(str(RUNTIME_FP32)), open_backend(str(detector_onnx()))
    assert (lite.name, onnx_model.name) == ("litert", "onnxruntime")
    assert lite.card == read_card(str(RUNTIME_FP32))
    # one model's card in both files, each with the digest of its own weights
    assert lite.card.replace(weights_digest=None) == onnx_model.card.replace(weights_digest=None)
    assert lite.input_shape == onnx_model.input_shape == (1, 3, 192, 192)
    assert lite.input_dtype == np.float32 and lite.input_quant is None
    assert onnx_model.output_names == ["boxes_s8", "boxes_s16", "boxes_s32", "scores_s8", "scores_s16", "scores_s32"]
    blob = preprocess(shapes_scene(0, "val", 3)[0], lite.card)
    a, b = lite.infer(blob), onnx_model.infer(blob)
    assert [x.shape for x in a] == [(1, 576, 4), (1, 144, 4), (1, 36, 4), (1, 576, 3), (1, 144, 3), (1, 36, 3)]
    assert all(x.dtype == np.float32 for x in a + b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-4)


def test_threads_and_backend_names():
    assert backends_for("m.tflite")[0] == "litert" and backends_for("m.onnx")[0] == "onnxruntime"
    backend = open_backend(str(RUNTIME_FP32), "litert", threads=1)
    assert backend.threads == 1 and "threads=1" in backend.describe()
    onnx_backend = open_backend(str(detector_onnx()), threads=2)
    assert onnx_backend.session.get_session_options().intra_op_num_threads == 2


def test_jetson_prefers_tensorrt_then_cuda_when_available(tmp_path, monkeypatch):
    from edgecnn.runtime.backends.onnxruntime import tensorrt_options

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    options = tensorrt_options()
    assert options["trt_engine_cache_enable"] and Path(options["trt_engine_cache_path"]).is_dir()
    assert Path(options["trt_engine_cache_path"]).is_relative_to(tmp_path)
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers(available, "jetson") == available
    assert onnx_providers(["CUDAExecutionProvider", "CPUExecutionProvider"], "jetson")[0] == "CUDAExecutionProvider"
    assert onnx_providers(available, "desktop") == ["CPUExecutionProvider"]
    assert onnx_providers(["CPUExecutionProvider"], "jetson") == ["CPUExecutionProvider"]


def test_int8_input_is_quantized_and_int8_outputs_dequantized_with_card_parameters(tmp_path):
    card = ModelCard(task="classify", labels=["a"], input_size=(4, 4), precision="int8",
                     quantization={"input": {"scale": 0.5, "zero_point": 3},
                                   "outputs": [{"scale": 1.0, "zero_point": 0}, {"scale": 0.25, "zero_point": 1}]})
    # the committed file carries this card
    assert read_card(str(int8_io_onnx())).replace(weights_digest=None) == card
    backend = open_backend(str(int8_io_onnx()))
    assert backend.input_dtype == np.int8 and backend.input_quant == (0.5, 3)
    blob = np.linspace(-80, 80, 48, dtype=np.float32).reshape(1, 3, 4, 4)
    raw, dequantized = backend.infer(blob)
    expected_q = np.clip(np.rint(blob / 0.5) + 3, -128, 127)
    np.testing.assert_array_equal(raw, expected_q)  # the float output shows the int8 input as given
    np.testing.assert_allclose(dequantized, (expected_q - 1) * 0.25)
    assert quantize(np.array([1000.0, -1000.0]), np.dtype(np.uint8), (1.0, 0)).tolist() == [255, 0]
    assert dequantize(np.array([5], np.int8), None).dtype == np.float32


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_or_truncated_models_are_one_line_errors(tmp_path, damage):
    data = RUNTIME_FP32.read_bytes()
    tflite = tmp_path / "bad.tflite"
    tflite.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"\x00" * 4096)
    onnx_file = tmp_path / "bad.onnx"
    onnx_file.write_bytes(detector_onnx().read_bytes()[:50000] if damage == "truncate" else b"not onnx" * 100)
    for path in (tflite, onnx_file):
        with pytest.raises(UserError):
            open_backend(str(path))
        assert_one_line_error(run_cli("run", path, "--source", "demo", "--max-frames", "1"), contains=str(path))


def test_unknown_missing_or_mismatched_backend_is_a_usage_error(tmp_path):
    for args, text in ((["--backend", "tensorflow"], "unknown backend"), (["--backend", "onnxruntime"], "cannot run")):
        assert_one_line_error(run_cli("run", RUNTIME_FP32, "--source", "demo", "--max-frames", "1", *args),
                              contains=text)
    assert_one_line_error(run_cli("run", tmp_path / "absent.tflite", "--max-frames", "1"), contains="no such model")
    assert_one_line_error(run_cli("run", tmp_path / "model.pt", "--max-frames", "1"), contains="expected .onnx")


def test_tflite_runtime_is_the_fallback_when_ai_edge_litert_is_missing():
    """tflite-runtime has the same Interpreter API; here a stand-in package provides it
    (the real wheel needs numpy<2) while ai-edge-litert is blocked."""
    import subprocess
    import sys

    code = (
        "import sys, types\n"
        "from ai_edge_litert import interpreter as real\n"
        "package = types.ModuleType('tflite_runtime'); module = types.ModuleType('tflite_runtime.interpreter')\n"
        "module.Interpreter = real.Interpreter; package.interpreter = module\n"
        "sys.modules.update({'tflite_runtime': package, 'tflite_runtime.interpreter': module,\n"
        "                    'ai_edge_litert': None, 'ai_edge_litert.interpreter': None, 'torch': None})\n"
        "from edgecnn.runtime.backends import backends_for, open_backend\n"
        "assert backends_for('m.tflite')[0] == 'tflite-runtime', backends_for('m.tflite')\n"
        "backend = open_backend(sys.argv[1])\n"
        "import numpy as np\n"
        "outputs = backend.infer(np.zeros(backend.input_shape, np.float32))\n"
        "print(backend.name, backend.card is None, len(outputs))\n")
    out = subprocess.run([sys.executable, "-c", code, str(RUNTIME_FP32)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tflite-runtime", "False", "6"]  # the card is read without the schema too


def test_card_reader_without_the_tflite_schema_matches_the_schema_reader(tmp_path):
    from ai_edge_litert import schema_py_generated as schema

    from converters.card_embed import embed_tflite
    from edgecnn.runtime.model_file import CARD_KEY, read_tflite_card
    from edgecnn.runtime.tflite_wire import metadata_buffer

    data = RUNTIME_FP32.read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    entry = next(model.Metadata(i) for i in range(model.MetadataLength())
                 if model.Metadata(i).Name() == CARD_KEY.encode())
    by_schema = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    assert metadata_buffer(data, CARD_KEY) == by_schema
    assert ModelCard.from_json(by_schema.decode()) == read_tflite_card(data)
    assert metadata_buffer(data, "no-such-key") is None
    other = read_tflite_card(data).replace(labels=["a", "b", "c"], metrics={"note": "re-embedded"})
    again = embed_tflite(data, other)  # replaces the card: still exactly one, the new one (same weights, same digest)
    assert ModelCard.from_json(metadata_buffer(again, CARD_KEY).decode()) == other == read_tflite_card(again)


def test_one_grammar_names_a_backend_and_its_options():
    from edgecnn.runtime.backends import parse_backend, split_options

    assert split_options("providers=A,B,cuda.device_id=1", "x") == {"providers": ["A", "B"], "cuda.device_id": ["1"]}
    spec = parse_backend("onnxruntime:providers=cuda,CPUExecutionProvider,cuda.device_id=1,exact_int8=off")
    assert spec.name == "onnxruntime" and spec.options == {
        "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda.device_id": "1", "exact_int8": "off"}
    assert parse_backend("litert:delegate=/usr/lib/libedgetpu.so.1,delegate.device=usb").options == {
        "delegate": "/usr/lib/libedgetpu.so.1", "delegate.device": "usb"}
    assert parse_backend("auto").name == "auto" and parse_backend(None).name == "auto"
    for text, message in (("onnxruntime:bogus=1", "has no option 'bogus'; known: providers, exact_int8"),
                          ("litert:xnnpack=maybe", "option xnnpack: expected on or off"),
                          ("onnxruntime:providers=nope", "unknown execution provider 'nope'"),
                          ("onnxruntime:exact_int8=on,off", "takes one value"),
                          ("litert:=1", "no name"), ("litert:delegate", "expected OPTION=VALUE"),
                          ("auto:x=1", "auto takes no options"), ("tensorflow", "unknown backend 'tensorflow'")):
        with pytest.raises(UserError, match=message):
            parse_backend(text)


def test_backends_report_what_ran_and_refuse_providers_that_are_absent(tmp_path):
    lite = open_backend(str(RUNTIME_FP32))
    assert lite.ran_on() == {"backend": "litert", "delegate": "xnnpack", "delegated_partitions": 3}
    reference = open_backend(str(RUNTIME_FP32), "litert:xnnpack=off")
    assert reference.ran_on()["delegated_partitions"] == 0 and reference.ran_on()["delegate"] is None
    blob = np.zeros(lite.input_shape, np.float32)
    for x, y in zip(lite.infer(blob), reference.infer(blob)):
        np.testing.assert_allclose(x, y, atol=1e-4)
    onnx_model = open_backend(str(detector_onnx()), "onnxruntime:providers=cpu")
    assert onnx_model.ran_on()["providers"] == ["CPUExecutionProvider"]
    with pytest.raises(UserError, match="TensorrtExecutionProvider is not available .*pip install onnxruntime-gpu"):
        open_backend(str(detector_onnx()), "onnxruntime:providers=tensorrt,cpu")
    with pytest.raises(UserError, match="cannot load delegate .*libnothing.so"):
        open_backend(str(RUNTIME_FP32), f"litert:delegate={tmp_path / 'libnothing.so'}")
    with pytest.raises(UserError, match="option cuda.device_id is for CUDAExecutionProvider, which is not among"):
        open_backend(str(detector_onnx()), "onnxruntime:cuda.device_id=0")
    result = run_cli("run", RUNTIME_FP32, "--source", "demo", "--max-frames", "1", "--backend", "litert:bogus=1")
    assert_one_line_error(result, contains="backend litert has no option 'bogus'; known: delegate, xnnpack")


def test_onnxruntime_counts_the_nodes_each_provider_took():
    from edgecnn.runtime.backends.onnxruntime import node_placement

    profiled = open_backend(str(detector_onnx()), "onnxruntime:placement=on")
    nodes = profiled.ran_on()["nodes"]
    assert list(nodes) == ["CPUExecutionProvider"] and nodes["CPUExecutionProvider"] > 20
    assert "cpu_ops" not in profiled.ran_on()  # the CPU was the provider asked for
    assert "nodes CPUExecutionProvider" in profiled.ran_on_text() and "requested_providers" not in profiled.ran_on_text()
    assert "nodes" not in open_backend(str(detector_onnx())).ran_on()  # one provider: no profiling
    # a GPU session that left some operators to the CPU, as onnxruntime's profile records it
    events = [{"cat": "Session", "name": "model_run"}]
    events += [{"cat": "Node", "name": f"conv{i}_kernel_time", "args": {"provider": "TensorrtExecutionProvider",
                                                                       "op_name": "TRTKernel"}} for i in range(2)]
    events += [{"cat": "Node", "name": "nms_kernel_time", "args": {"provider": "CPUExecutionProvider",
                                                                  "op_name": "NonMaxSuppression"}},
               {"cat": "Node", "name": "nms_fence_before", "args": {"op_name": "NonMaxSuppression"}}]
    assert node_placement(events, ["TensorrtExecutionProvider", "CPUExecutionProvider"]) == {
        "nodes": {"TensorrtExecutionProvider": 2, "CPUExecutionProvider": 1}, "cpu_ops": {"NonMaxSuppression": 1}}


def test_the_run_log_says_what_ran():
    result = run_cli("run", RUNTIME_FP32, "--source", "demo", "--max-frames", "2", "--backend", "litert",
                     "--json", "-")
    assert result.returncode == 0, result.stderr
    assert "(detect, 3 labels, litert: delegate xnnpack; delegated_partitions 3) on demo" in result.stderr
