"""edgecnn.load(): predict and stream on both backends, typed results, cards from flags,
and a runtime that imports neither torch nor onnx."""
import json
import subprocess
import sys

import numpy as np
import pytest

import edgecnn
from conftest import assert_one_line_error, run_cli
from edgecnn.data.detection import DETECTION_SHAPES, shapes_scene
from edgecnn.core.errors import UserError
from edgecnn.runtime.card_options import CardOptions
from edgecnn.tasks.classify.result import Classes
from edgecnn.tasks.detect.result import Detections
from runtime_fixtures import ROOT, VIDEO, VIDEO_FRAMES, detector_onnx, digits_onnx, without_card

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


def box_iou(a, b):
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("path", [None, "onnx"])
def test_detector_finds_the_shapes_of_a_held_out_scene_on_both_backends(path):
    model = edgecnn.load(str(detector_onnx()) if path else None, backend="onnxruntime" if path else "litert")
    assert model.backend.name == ("onnxruntime" if path else "litert") and model.task == "detect"
    hits = 0
    for index in range(6):
        image, boxes, classes = shapes_scene(0, "val", index)
        result = model.predict(image)
        assert isinstance(result, Detections) and result.inference_ms > 0 and result.frame_age_ms >= result.inference_ms
        for box, cls in zip(boxes, classes):
            hits += any(c == cls and box_iou(box, b) > 0.5 for b, c in zip(result.boxes, result.classes))
    total = sum(len(shapes_scene(0, "val", i)[2]) for i in range(6))
    assert hits >= 0.8 * total, (hits, total)
    record = result.to_dict()
    assert record["task"] == "detect" and {"frame", "capture_time", "frame_age_ms", "inference_ms"} <= set(record)
    assert all(d["label"] in DETECTION_SHAPES and len(d["box"]) == 4 for d in record["detections"])


def test_classifier_reads_real_digits():
    from edgecnn.data import load_classification

    model = edgecnn.load(str(digits_onnx()))
    data = load_classification("digits", "test")
    picks = range(0, 1000, 50)
    results = [model.predict(data.images[i]) for i in picks]
    assert all(isinstance(r, Classes) for r in results)
    correct = sum(r.label == data.labels[data.targets[i]] for r, i in zip(results, picks))
    assert correct >= 18, correct
    top = results[0].to_dict()
    assert top["task"] == "classify" and abs(sum(results[0].scores) - 1) < 1e-4
    assert top["classes"][0]["label"] == top["label"] and len(top["classes"]) == 5


def test_predict_takes_an_image_path(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "scene.png"), shapes_scene(0, "val", 1)[0])
    assert len(edgecnn.load().predict(tmp_path / "scene.png")) >= 1
    with pytest.raises(UserError, match="not a readable image"):
        edgecnn.load().predict(tmp_path / "missing.png")


def test_stream_yields_every_video_frame_in_order_with_timing():
    model = edgecnn.load()
    stream = model.stream(str(VIDEO))
    seen = [(frame.shape, result.frame_index, result.frame_age_ms) for frame, result in stream]
    assert [index for _, index, _ in seen] == list(range(VIDEO_FRAMES))
    assert all(shape == (240, 320, 3) for shape, _, _ in seen)
    assert stream.stats.frames == VIDEO_FRAMES and stream.stats.dropped == 0
    with model.stream(str(VIDEO), max_frames=5) as short:
        assert len(list(short)) == 5


def test_no_card_needs_flags_and_the_error_names_them(tmp_path):
    plain = without_card(detector_onnx(), tmp_path / "plain.onnx")
    result = run_cli("run", plain, "--source", "demo", "--max-frames", "1")
    assert_one_line_error(result, contains="has no model card; give --task")
    assert "--mean" in result.stderr and "--labels" in result.stderr and "--input-size" not in result.stderr
    result = run_cli("run", plain, "--source", "demo", "--max-frames", "1", "--task", "detect", "--mean", "127.5",
                     "--std", "127.5", "--labels", "circle,rectangle,triangle")
    assert_one_line_error(result, contains="--head")
    labels = tmp_path / "labels.txt"
    labels.write_text("circle\nrectangle\ntriangle\n")
    flags = CardOptions(task="detect", mean="127.5", std="127.5", labels=str(labels), head="ltrb-sigmoid:8,16,32")
    flagged = edgecnn.load(str(plain), card=flags)
    assert flagged.card.input_size == (192, 192) and flagged.card.layout == "nchw"
    image = shapes_scene(0, "val", 2)[0]
    carded = edgecnn.load(str(detector_onnx())).predict(image)
    np.testing.assert_allclose(flagged.predict(image).boxes, carded.boxes, atol=1e-3)


def test_card_that_does_not_match_the_model_is_a_one_line_error(tmp_path):
    # the bundled default is the int8 (NHWC) or the fp32 (NCHW) file, whichever is faster on this CPU
    wrong_size = run_cli("run", "--source", "demo", "--max-frames", "1", "--input-size", "224")
    assert_one_line_error(wrong_size, contains="but its card says")
    assert "(1, 3, 192, 192)" in wrong_size.stderr or "(1, 192, 192, 3)" in wrong_size.stderr
    assert_one_line_error(run_cli("run", digits_onnx(), "--source", "demo", "--max-frames", "1",
                                  "--labels", "a,b,c"), contains="should output 3 values")
    assert_one_line_error(run_cli("run", "--source", "demo", "--max-frames", "1", "--labels", "a,b"),
                          contains="score tensors")


def test_runtime_streams_with_torch_and_onnx_blocked():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
        "import json, edgecnn\n"
        "model = edgecnn.load()\n"
        "stream = model.stream('demo?fps=200', max_frames=5)\n"
        "records = []\n"
        "for frame, result in stream:\n"
        "    records.append(result.to_dict())\n"
        "lite = edgecnn.load(sys.argv[1], backend='onnxruntime').predict(frame)\n"
        "print(json.dumps({'frames': [r['frame'] for r in records], 'onnx': len(lite),\n"
        "                  'torch': 'torch' in sys.modules and sys.modules['torch'] is not None}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(detector_onnx())], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(report["frames"]) == 5 and report["onnx"] >= 1 and report["torch"] is False


def test_bound_preprocessing_is_the_one_preprocessing():
    from edgecnn.core.preprocess import make_preprocessor, preprocess

    model = edgecnn.load(str(digits_onnx()))
    image = shapes_scene(0, "val", 4)[0]
    np.testing.assert_array_equal(make_preprocessor(model.card)(image), preprocess(image, model.card))
    np.testing.assert_array_equal(model.preprocess(image), preprocess(image, model.card))


def test_edgecnn_run_command_needs_neither_torch_nor_onnx(tmp_path):
    code = ("import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
            "from edgecnn.cli import main\n"
            "main(['run', '--source', 'demo?fps=100', '--max-frames', '3', '--json', sys.argv[1], '--save', sys.argv[2],"
            " '--serve', '127.0.0.1:0'])\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.jsonl"), str(tmp_path / "r.avi")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 3 and (tmp_path / "r.avi").stat().st_size > 0


def test_nms_overlap_threshold_is_a_run_option(tmp_path):
    counts = {}
    for iou in ("0.05", "0.95"):
        out = tmp_path / f"{iou}.jsonl"
        result = run_cli("run", "--source", "demo", "--max-frames", "4", "--conf", "0.05", "--iou", iou, "--json", out)
        assert result.returncode == 0, result.stderr
        counts[iou] = sum(len(json.loads(line)["detections"]) for line in out.read_text().splitlines())
    assert counts["0.05"] < counts["0.95"]  # a low threshold merges overlapping boxes
    assert_one_line_error(run_cli("run", "--source", "demo", "--max-frames", "1", "--iou", "1.5"),
                          contains="thresholds must be within 0..1")
