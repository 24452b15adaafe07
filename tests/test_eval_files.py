"""`edgecnn eval FILE --data DIR` scores an exported file of any origin: its labels are
matched to the dataset's by name, so a model naming more classes, in another order, is
scored on the classes the dataset has."""
import json

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from edgecnn.data.detection import DetectionSet, write_yolo
from foreign_models import onnx_model, ultralytics_metadata


@pytest.mark.slow  # two edgecnn processes, about 7 s
def test_eval_of_a_third_party_detector_maps_its_labels_by_name(tmp_path):
    # one 128x64 image holding one 'b' (dataset class 1) at x 44..84, y 22..42
    image = np.full((64, 128, 3), 90, np.uint8)
    write_yolo(DetectionSet("t", "val", ["a", "b"], [image], [np.array([[44, 22, 84, 42]], np.float32)],
                            [np.array([1])]), str(tmp_path / "data"), "val")
    anchors = 64 + 16 + 4
    table = np.zeros((1, 7, anchors), np.float32)  # the model names x, b, a: 'b' is its class 1
    table[0, :, 0] = [32, 32, 20, 10, 0.0, 0.9, 0.0]  # in the letterboxed 64x64 input: the 'b' box exactly
    table[0, :, 1] = [10, 30, 6, 6, 0.8, 0.0, 0.0]  # an 'x': a class the dataset lacks, dropped
    path = onnx_model(tmp_path / "yolo.onnx", [1, 3, 64, 64], [table],
                      metadata=ultralytics_metadata(["x", "b", "a"], (64, 64)))
    result = run_cli("eval", path, "--data", tmp_path / "data", "--plot", "", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["map50_95"] > 0.99 and report["images"] == 1 and report["objects"] == 1
    assert [c["label"] for c in report["per_class"]] == ["a", "b"]
    other = onnx_model(tmp_path / "other.onnx", [1, 3, 64, 64], [table],
                       metadata=ultralytics_metadata(["p", "q", "r"], (64, 64)))
    assert_one_line_error(run_cli("eval", other, "--data", tmp_path / "data", "--plot", ""),
                          contains="share no name with the dataset's")


@pytest.mark.slow  # an edgecnn process, about 3 s
def test_eval_of_a_third_party_classifier_on_an_image_folder(tmp_path, image_folder):
    logits = np.array([[0.1, 2.0, 0.3]], np.float32)  # always 'digit3': right on half the val images
    path = onnx_model(tmp_path / "classifier.onnx", [1, 3, 28, 28], [logits])
    result = run_cli("eval", path, "--data", image_folder, "--preset", "imagenet", "--labels",
                     "other,digit3,digit7", "--plot", "", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["top1"] == 0.5
