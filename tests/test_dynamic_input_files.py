"""Files whose input has dynamic batch, height and width (what Ultralytics' `dynamic=True`
export writes): `edgecnn info` describes them and `edgecnn bench` runs them at the size
the file names (Ultralytics' imgsz) or --input-size gives; where neither says, one line."""
import json

import pytest

from conftest import assert_one_line_error, run_cli_batch
from runtime_fixtures import detector_onnx

SHAPES = [[1, 576, 4], [1, 144, 4], [1, 36, 4], [1, 576, 3], [1, 144, 3], [1, 36, 3]]


def dynamic_detector(path, imgsz=None):
    """The bundled detector's ONNX export with symbolic batch, height and width, no card,
    and (when given) Ultralytics' imgsz in metadata_props."""
    import onnx

    model = onnx.load(str(detector_onnx()))
    del model.metadata_props[:]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for index, name in ((0, "batch"), (2, "height"), (3, "width")):
        dims[index].ClearField("dim_value")
        dims[index].dim_param = name
    for output in model.graph.output:
        output.type.tensor_type.shape.dim[0].dim_param = "batch"
        output.type.tensor_type.shape.dim[1].dim_param = "anchors"
    if imgsz:
        entry = model.metadata_props.add()
        entry.key, entry.value = "imgsz", str(list(imgsz))
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("dynamic")
    return {"named": dynamic_detector(root / "named.onnx", (192, 192)), "unnamed": dynamic_detector(root / "unnamed.onnx")}


def test_info_runs_a_dynamic_input_at_the_size_the_file_names(files):
    as_json, as_text = run_cli_batch(["info", files["named"], "--json"], ["info", files["named"]])
    info = json.loads(as_json.stdout)
    assert info["inputs"][0]["shape"] == ["batch", 3, "height", "width"]
    assert info["runs_at"] == [1, 3, 192, 192] and info["output_shapes"] == SHAPES
    assert info["head"]["name"] == "ltrb-sigmoid"
    assert "runs at       [1, 3, 192, 192] (dynamic input; the size the file names)" in as_text.stdout


def test_info_describes_a_dynamic_input_with_no_size_without_running_it(files):
    as_json, as_text = run_cli_batch(["info", files["unnamed"], "--json"], ["info", files["unnamed"]])
    assert as_json.returncode == 0 and as_text.returncode == 0 and "Traceback" not in as_text.stderr
    info = json.loads(as_json.stdout)
    assert info["runs_at"] is None and info["output_shapes"] is None and info["head"]["name"] is None
    assert info["quantization"]["precision"] == "fp32" and info["ops"]["Conv"] > 10
    assert "runs at       unknown: the input has dynamic dimensions" in as_text.stdout


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_bench_runs_a_dynamic_input_at_its_imgsz_or_the_given_size(files, backend):
    common = ["--backend", backend, "--threads", "1", "--runs", "3", "--warmup", "0", "--json", "-"]
    named, given = run_cli_batch(["bench", files["named"], *common],
                                 ["bench", files["unnamed"], "--input-size", "192", *common])
    for result in (named, given):
        (record,) = [json.loads(line) for line in result.stdout.splitlines()]
        assert record["status"] == "ok", record.get("error")
        assert record["input_shape"] == [1, 3, -1, -1] and record["run_input_shape"] == [1, 3, 192, 192]


def test_bench_without_a_size_or_with_one_the_model_cannot_take_is_one_line(files):
    unknown, fixed, malformed = run_cli_batch(
        ["bench", files["unnamed"], "--backend", "onnxruntime", "--threads", "1", "--runs", "3"],
        ["bench", detector_onnx(), "--backend", "onnxruntime", "--threads", "1", "--runs", "3", "--input-size",
         "96"],
        ["bench", files["unnamed"], "--input-size", "9x"])
    assert_one_line_error(unknown, 2, "no configuration could be measured")
    assert "has dynamic dimensions; give --input-size" in unknown.stdout
    assert_one_line_error(fixed, 2, "no configuration could be measured")
    assert "--input-size 96x96: the model takes only 192x192" in fixed.stdout
    assert_one_line_error(malformed, 2, "--input-size must be N or HxW")
