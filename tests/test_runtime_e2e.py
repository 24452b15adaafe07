"""End to end through the command line: `edgecnn train` a tiny classifier for a few
seconds, `edgecnn convert` it to TFLite, and `edgecnn run` it on a real video; the
JSON lines must describe every frame with the trained model's labels and the
probabilities the model itself gives."""
import pytest
import json

import cv2
import numpy as np

import edgecnn
from conftest import run_cli
from runtime_fixtures import VIDEO, VIDEO_FRAMES


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_train_convert_run_on_a_real_video(image_folder, tmp_path):
    run_cli("train", "--model", "lenet5", "--data", image_folder, "--imgsz", "32", "--epochs", "2",
            "--batch", "16", "--out", tmp_path / "run", check=True)
    run_cli("convert", tmp_path / "run" / "last.pt", "--to", "tflite", "--precision", "fp32", "--out",
            tmp_path / "models", check=True)
    records = {}
    for suffix in ("tflite",):  # the device format; the ONNX backend is covered in test_runtime_model.py
        model_file = tmp_path / "models" / f"last-fp32.{suffix}"
        out = tmp_path / f"frames-{suffix}.jsonl"
        result = run_cli("run", model_file, "--source", VIDEO, "--json", out, check=True)
        assert f"summary: {VIDEO_FRAMES} frames" in result.stderr
        records[suffix] = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["frame"] for r in records[suffix]] == list(range(VIDEO_FRAMES))
        assert all(r["task"] == "classify" and r["label"] in ("digit3", "digit7") for r in records[suffix])
        assert all(abs(sum(c["score"] for c in r["classes"]) - 1) < 1e-3 for r in records[suffix])

    # The recorded scores are the model's own on those frames (checked against the checkpoint in torch).
    import torch

    from edgecnn.training.checkpoint import load_model
    from edgecnn.core.preprocess import preprocess

    torch_model, card, _ = load_model(tmp_path / "run" / "last.pt")
    video = cv2.VideoCapture(str(VIDEO))
    for index in range(VIDEO_FRAMES):
        _, frame = video.read()
        if index % 17:
            continue
        with torch.no_grad():
            expected = torch.softmax(torch_model(torch.from_numpy(preprocess(frame, card))), 1)[0].numpy()
        for suffix in records:
            got = {c["label"]: c["score"] for c in records[suffix][index]["classes"]}
            np.testing.assert_allclose([got[label] for label in card.labels], expected, atol=2e-3)
    loaded = edgecnn.load(str(tmp_path / "models" / "last-fp32.tflite"))
    assert loaded.card.labels == card.labels and loaded.backend.name == "litert"
