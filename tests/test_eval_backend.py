"""`edgecnn eval FILE --backend NAME`: a file is scored on the backend named (each
backend's int8 run held to the gate), and without one on this device's first backend for
its format, never on `auto`'s choice among its siblings, which would score another file."""
import shutil

import pytest

from conftest import assert_one_line_error, run_cli
from edgecnn.assets import RUNTIME_FP32, RUNTIME_INT8, SHAPES_DETECTOR
from edgecnn.runtime import bundled
from edgecnn.training import evaluate


class Scored(Exception):
    """Raised where the file would be scored, carrying the backend that would run it."""


@pytest.fixture()
def siblings(tmp_path, monkeypatch):
    """The bundled fp32 and int8 files side by side, the int8 one made to time faster."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for path in (RUNTIME_FP32, RUNTIME_INT8):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(bundled, "median_ms", lambda backend: 1.0 if "int8" in backend.path else 9.0)

    def scored(model):
        raise Scored(model.backend)

    monkeypatch.setattr(evaluate, "file_predictor", scored)
    return tmp_path / RUNTIME_FP32.name


def test_the_file_named_is_scored_even_beside_a_faster_sibling(siblings):
    with pytest.raises(Scored) as caught:
        evaluate.evaluate_file(str(siblings), "shapes", plot="")
    backend = caught.value.args[0]
    assert backend.path == str(siblings) and backend.name == "litert"


@pytest.mark.parametrize("name", ["openvino", "litert:xnnpack=off"])
def test_the_backend_named_runs_it_with_its_options(siblings, name):
    with pytest.raises(Scored) as caught:
        evaluate.evaluate_file(str(siblings), "shapes", plot="", backend=name)
    backend = caught.value.args[0]
    assert backend.path == str(siblings) and str(backend.name) == name.partition(":")[0]
    assert backend.options == ({"xnnpack": False} if ":" in name else {})


@pytest.mark.slow  # three edgecnn processes, one scoring the 300 held-out scenes
def test_eval_on_a_named_backend_and_the_one_line_errors(tmp_path):
    result = run_cli("eval", RUNTIME_INT8, "--data", "shapes", "--backend", "openvino", "--plot", "", "--json")
    assert result.returncode == 0, result.stderr
    import json

    from edgecnn.runtime.model_file import read_card

    card = read_card(str(RUNTIME_INT8))
    drop = 100 * (card.metrics["fp32_map50_95"] - json.loads(result.stdout)["map50_95"])
    assert drop <= card.metrics["max_drop_points"]  # the gate holds on OpenVINO too
    assert_one_line_error(run_cli("eval", RUNTIME_INT8, "--backend", "auto", "--plot", ""),
                          contains="name the backend that scores")
    assert_one_line_error(run_cli("eval", SHAPES_DETECTOR, "--backend", "litert", "--plot", ""),
                          contains="--backend is for .onnx/.tflite files")
