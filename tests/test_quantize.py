"""edgecnn quantize: PT2E int8 measured against the fp32 model, the gate, calibration
checks, and the int8 program feeding the TFLite converter."""
import json

import cv2
import numpy as np

from conftest import ROOT, assert_one_line_error, run_cli

DIGITS = ROOT / "edgecnn" / "assets" / "digits_mobilenet_v2.pt"
DETECTOR = ROOT / "edgecnn" / "assets" / "shapes_detector.pt"


def test_calibration_checks_warn_on_few_images_and_foreign_statistics():
    from edgecnn.quantize import MIN_CALIBRATION_IMAGES, check_calibration

    rng = np.random.default_rng(0)
    reference = rng.normal(-0.6, 0.5, (256, 1, 8, 8)).astype(np.float32)
    same = rng.normal(-0.6, 0.5, (256, 1, 8, 8)).astype(np.float32)
    assert check_calibration(same, reference).warnings == []
    few = check_calibration(same[:2], reference)
    assert len(few.warnings) == 1 and f"at least {MIN_CALIBRATION_IMAGES}" in few.warnings[0]
    inverted = check_calibration(-same, reference)  # e.g. white-on-black frames for a black-on-white model
    assert len(inverted.warnings) == 1 and "differ from the training images" in inverted.warnings[0]


def test_digits_int8_within_budget_and_full_int8_tflite(tmp_path):
    out = tmp_path / "digits-int8.pt2"
    result = run_cli("quantize", DIGITS, "--out", out, "--json", check=True)
    summary = json.loads(result.stdout)
    assert summary["gate"]["passed"] and summary["gate"]["images"] == 1000
    assert summary["fp32"]["top1"] >= 0.99 and summary["gate"]["drop"] <= 0.3, summary["gate"]
    assert summary["warnings"] == [] and summary["calibration_images"] == 256

    from edgecnn.quantize import load_quantized

    card = load_quantized(out).card
    assert card.precision == "int8" and card.layout == "nhwc"
    assert card.metrics["top1"] == summary["int8"]["top1"] and card.quantization["weights"] == "per-channel"

    converted = run_cli("convert", out, "--to", "tflite", "--precision", "int8", "--out", tmp_path / "tfl",
                        "--json", check=True)
    (report,) = json.loads(converted.stdout)
    assert report["written"] and report["gate"]["passed"] and report["gate"]["drop"] <= 0.3, report["gate"]
    assert report["transposes"] == 0 and report["float_tensors"] == 0

    from edgecnn.runtime.backends import open_backend

    backend = open_backend(report["file"])
    assert backend.card.precision == "int8" and backend.card.quantization["input"]["dtype"] == "int8"
    assert backend.input_dtype == np.int8


def test_blank_calibration_is_refused_and_warned(tmp_path):
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(4):
        cv2.imwrite(str(blank / f"{i}.png"), np.zeros((20, 20), np.uint8))
    out = tmp_path / "bad.pt2"
    result = run_cli("quantize", DIGITS, "--calib", blank, "--out", out)
    assert result.returncode == 3, result.stderr
    assert "only 4 calibration images" in result.stdout and "differ from the training images" in result.stdout
    assert "beyond the budget" in result.stderr and not out.exists()


def test_bad_input_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = ["--out", tmp_path / "q.pt2"]
    assert_one_line_error(run_cli("quantize", DIGITS, "--calib", empty, *out), 2, "no calibration images")
    assert_one_line_error(run_cli("quantize", DETECTOR, "--data", "digits", *out), 2)
    assert_one_line_error(run_cli("quantize", DIGITS, "--out", tmp_path / "q.onnx"), 2, "must end in .pt2")
    assert_one_line_error(run_cli("quantize", tmp_path / "nope.pt", *out), 2, "not found")
