"""The bundled models load, carry their measured accuracy, and reproduce it."""
import pytest

from edgecnn.assets import DIGITS_CLASSIFIER, SHAPES_DETECTOR, default_model
from edgecnn.training.checkpoint import load_model
from edgecnn.training.evaluate import evaluate_checkpoint


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_bundled_digits_classifier_reproduces_its_card():
    model, card, payload = load_model(DIGITS_CLASSIFIER)
    assert card.task == "classify" and card.architecture == {"name": "mobilenet_v2", "width": 0.5}
    assert card.metrics["top1"] >= 0.99 and card.metrics["split"] == "val"
    assert "optimizer" not in payload and payload["source_hash"].startswith("sha256:")
    report = evaluate_checkpoint(str(DIGITS_CLASSIFIER), "digits", "val", plot="")
    assert report["top1"] == pytest.approx(card.metrics["top1"], abs=0.0011)


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_bundled_shapes_detector_reproduces_its_card():
    assert default_model() == SHAPES_DETECTOR
    model, card, _ = load_model(SHAPES_DETECTOR)
    assert card.task == "detect" and card.input_size == (192, 192)
    report = evaluate_checkpoint(str(SHAPES_DETECTOR), "shapes", "val", plot="")
    assert report["map50_95"] == pytest.approx(card.metrics["map50_95"], abs=0.002)
    assert report["map50"] >= 0.97 and report["map50_95"] >= 0.86  # measured: 0.986 and 0.897
