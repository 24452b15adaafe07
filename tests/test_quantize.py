"""edgecnn quantize: PT2E int8 measured against the fp32 model, the gate, calibration
checks, and the int8 program feeding the TFLite converter."""
import json

import cv2
import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, run_cli, run_cli_batch

DIGITS = ROOT / "edgecnn" / "assets" / "digits_mobilenet_v2.pt"
DETECTOR = ROOT / "edgecnn" / "assets" / "shapes_detector.pt"


def test_calibration_checks_warn_on_few_images_and_foreign_statistics():
    from edgecnn.compress.quantize.calibration import MIN_CALIBRATION_IMAGES, check_calibration

    rng = np.random.default_rng(0)
    reference = rng.normal(-0.6, 0.5, (256, 1, 8, 8)).astype(np.float32)
    same = rng.normal(-0.6, 0.5, (256, 1, 8, 8)).astype(np.float32)
    assert check_calibration(same, reference).warnings == []
    few = check_calibration(same[:2], reference)
    assert len(few.warnings) == 1 and f"at least {MIN_CALIBRATION_IMAGES}" in few.warnings[0]
    inverted = check_calibration(-same, reference)  # e.g. white-on-black frames for a black-on-white model
    assert len(inverted.warnings) == 1 and "differ from the training images" in inverted.warnings[0]


@pytest.mark.slow(100)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_digits_int8_within_budget_and_full_int8_tflite(tmp_path):
    out = tmp_path / "digits-int8.pt2"
    result = run_cli("quantize", DIGITS, "--out", out, "--json", check=True)
    summary = json.loads(result.stdout)
    assert summary["gate"]["passed"] and summary["gate"]["images"] == 1000
    assert summary["fp32"]["top1"] >= 0.99 and summary["gate"]["drop"] <= 0.3, summary["gate"]
    assert summary["warnings"] == [] and summary["calibration_images"] == 256

    from edgecnn.compress.quantize.program import load_quantized

    card = load_quantized(out).card
    assert card.precision == "int8" and card.layout == "nhwc"
    assert card.metrics["top1"] == summary["int8"]["top1"] and card.quantization["weights"] == "per-channel"
    assert card.metrics["max_drop_points"] == summary["gate"]["max_drop"]

    converted = run_cli("convert", out, "--to", "tflite", "--precision", "int8", "--out", tmp_path / "tfl",
                        "--json", check=True)
    (report,) = json.loads(converted.stdout)
    assert report["written"] and report["gate"]["passed"] and report["gate"]["drop"] <= 0.3, report["gate"]
    assert report["transposes"] == 0 and report["float_tensors"] == 0

    from edgecnn.runtime.backends import open_backend

    backend = open_backend(report["file"])
    assert backend.card.precision == "int8" and backend.card.quantization["input"]["dtype"] == "int8"
    assert backend.input_dtype == np.int8


@pytest.mark.slow(15)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_blank_calibration_is_refused_and_warned(tiny_digits_lenet, tmp_path):
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(4):
        cv2.imwrite(str(blank / f"{i}.png"), np.zeros((20, 20), np.uint8))
    out = tmp_path / "bad.pt2"
    result = run_cli("quantize", tiny_digits_lenet, "--calib", blank, "--out", out)
    assert result.returncode == 3, result.stderr
    assert "only 4 calibration images" in result.stdout and "differ from the training images" in result.stdout
    assert "beyond the budget" in result.stderr and not out.exists()


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_bad_input_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = ["--out", tmp_path / "q.pt2"]
    cases = [((DIGITS, "--calib", empty, *out), "no calibration images"),
             ((DETECTOR, "--data", "digits", *out), None),
             ((DIGITS, "--out", tmp_path / "q.onnx"), "must end in .pt2"),
             ((tmp_path / "nope.pt", *out), "not found"),
             ((DIGITS, "--float-layers", "features.0.0,head.nope", *out), "no convolution or linear layer named")]
    for result, (_, message) in zip(run_cli_batch(*(["quantize", *args] for args, _ in cases)), cases):
        assert_one_line_error(result, 2, message)


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_a_conv_and_its_relu6_are_quantized_once_after_the_relu6():
    """MobileNetV2's conv + ReLU6 pairs keep all 256 steps for the ReLU6's 0..6: no
    quantize op between the two, and the range observed after the ReLU6 starts at 0
    (zero point -128). Before, the conv's output was quantized with its pre-activation
    range and the ReLU6 shared it. The first conv, followed by a ReLU6, can now stay float."""
    from edgecnn.training.checkpoint import load_model
    from edgecnn.compress.quantize.calibration import load_images
    import torch

    from edgecnn.compress.quantize.ptq import channel_last, export_graph, quantize_model
    from edgecnn.core.preprocess import preprocess_batch

    model, card, _ = load_model(str(DIGITS))
    images = load_images("digits", card, 8)
    # one export for both programs (the strict export is most of the time)
    exported = export_graph(channel_last(model.eval()),
                            torch.from_numpy(preprocess_batch(images[:2], card.replace(layout="nhwc"))))
    graph = quantize_model(model, card, images, graph=exported).module.graph
    relu6 = [n for n in graph.nodes if "hardtanh" in str(n.target)]
    assert len(relu6) == 35
    for node in relu6:
        assert "conv2d" in str(node.args[0].target), node.args[0].target
        (quantize,) = node.users
        scale, zero_point = quantize.args[1:3]
        assert "quantize_per_tensor" in str(quantize.target) and zero_point == -128 and scale <= 6 / 255 + 1e-6
    first_float = quantize_model(model, card, images, float_layers=["features.0.0"], graph=exported).module.graph
    convs = [n for n in first_float.nodes if "conv2d" in str(n.target)]
    assert "dequantize" not in str(convs[0].args[1].target) and "dequantize" in str(convs[1].args[1].target)


@pytest.mark.slow(50)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_quantization_aware_training_gives_a_full_int8_classifier(tiny_digits_lenet, tmp_path):
    """QAT on a small LeNet-5 (32x32 digits): the fine-tuned int8 graph keeps the float
    accuracy, and converts to a TFLite file with only integer tensors."""
    import torch

    from edgecnn.training.evaluate import evaluate_predictor, torch_predictor
    from edgecnn.compress.quantize.calibration import load_images
    from edgecnn.compress.quantize.program import save_quantized
    from edgecnn.compress.quantize.qat import quantization_aware_training
    from edgecnn.tasks.classify.training import ClassifyTraining
    from edgecnn.training.train import TrainConfig

    from edgecnn.training.checkpoint import load_model

    torch.manual_seed(0)
    model, card, _ = load_model(tiny_digits_lenet)
    task = ClassifyTraining(TrainConfig(model="lenet5", data="digits", imgsz=32), card)
    model.eval()
    fp32 = evaluate_predictor(torch_predictor(model), task.card, "digits")["top1"]
    assert fp32 > 0.9

    calibration = load_images("digits", task.card, 64)
    quantized = quantization_aware_training(model, task.card, "digits", 1, calibration, log=lambda m: None)
    int8 = evaluate_predictor(quantized.predict, quantized.card, "digits")["top1"]
    assert int8 >= fp32 - 0.01 and quantized.card.quantization["scheme"] == "pt2e-symmetric-qat"
    assert quantized.card.quantization["qat_distill_weight"] == 0.0  # on the labels alone: no teacher given

    quantized.card = quantized.card.replace(metrics={"top1": int8, "fp32_top1": fp32})
    program = tmp_path / "lenet-int8.pt2"
    save_quantized(program, quantized, np.zeros((2, 32, 32, 1), np.float32))
    # an int8 program converts at int8 by default, and `--to all` makes its TFLite file (and says why no ONNX)
    converted = run_cli("convert", program, "--to", "all", "--data", "digits", "--out", tmp_path / "out", "--json",
                        check=True)
    assert "TFLite only" in converted.stderr
    (report,) = json.loads(converted.stdout)
    assert report["written"] and report["float_tensors"] == 0 and report["transposes"] == 1  # LeNet's flatten
    assert report["gate"]["drop"] <= 2.0
    fp32_from_program = run_cli("convert", program, "--precision", "fp32", "--to", "tflite", "--data", "digits",
                                "--out", tmp_path / "out32")
    assert_one_line_error(fp32_from_program, contains="is an int8 program")


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_mixed_precision_ranks_layers_and_keeps_the_most_sensitive_in_float(tmp_path):
    """--mixed: a per-layer sensitivity report, then int8 with the most sensitive layers
    left float; with an unreachable budget every attempt is reported and nothing written."""
    import torch

    from edgecnn.training.checkpoint import build_from_card, save_checkpoint
    from edgecnn.core.errors import GateRefused
    from edgecnn.compress.quantize import QuantizeOptions, quantize_checkpoint
    from edgecnn.compress.quantize.ptq import quantizable_layers
    from edgecnn.tasks.classify.training import ClassifyTraining
    from edgecnn.training.train import TrainConfig

    torch.manual_seed(0)
    task = ClassifyTraining(TrainConfig(model="lenet5", data="digits", imgsz=32), None)
    model = build_from_card(task.card).eval()
    save_checkpoint(tmp_path / "lenet.pt", task.card, model)
    messages = []
    with pytest.raises(GateRefused):
        quantize_checkpoint(str(tmp_path / "lenet.pt"), str(tmp_path / "q.pt2"), QuantizeOptions(
            calib_images=64, mixed=True, max_drop=-100.0), log=messages.append)
    layers = quantizable_layers(model)
    ranked = [m for m in messages if m.startswith("  [")]
    assert len(ranked) == len(layers) and all(any(name in m for m in ranked) for name in layers)
    attempts = [m for m in messages if m.startswith("int8 with ")]
    assert attempts and "1 float layer(s)" in attempts[0]
    assert not (tmp_path / "q.pt2").exists()
    assert any(not m.rstrip().endswith("+0.0000") for m in ranked), ranked  # float layers take effect


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_float_layers_stay_float_in_the_channel_last_graph():
    """Layers named in float_layers run unquantized: with every layer float the program
    reproduces the fp32 model, which the all-int8 program does not."""
    import torch

    from edgecnn.training.checkpoint import build_from_card
    from edgecnn.compress.quantize.calibration import load_images
    from edgecnn.compress.quantize.ptq import quantizable_layers, quantize_model
    from edgecnn.core.preprocess import preprocess_batch
    from edgecnn.tasks.classify.training import ClassifyTraining
    from edgecnn.training.train import TrainConfig

    torch.manual_seed(0)
    card = ClassifyTraining(TrainConfig(model="lenet5", data="digits", imgsz=32), None).card
    model = build_from_card(card).eval()
    images = load_images("digits", card, 32)
    with torch.no_grad():
        reference = model(torch.from_numpy(preprocess_batch(images[:8], card))).numpy()
    nhwc = preprocess_batch(images[:8], card.replace(layout="nhwc"))
    int8 = np.asarray(quantize_model(model, card, images).predict(nhwc))
    kept = np.asarray(quantize_model(model, card, images, float_layers=quantizable_layers(model)).predict(nhwc))
    assert np.abs(kept - reference).max() < 0.1 * np.abs(int8 - reference).max()


@pytest.mark.slow(60)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_float_box_convs_keep_the_box_outputs_float(tmp_path):
    """A detector's box convs kept float keep its box outputs float too: the sigmoid and
    reshapes after them are left unquantized, so int8 does not round side distances to
    steps of 1/256 of the input, in the PT2E graph and in the TFLite file. The class
    outputs stay int8."""
    from converters import to_tflite
    from edgecnn.training.checkpoint import load_model
    from edgecnn.compress.quantize.calibration import load_images
    from edgecnn.compress.quantize.ptq import CONV_OPS, quantize_model
    from edgecnn.runtime.backends import open_backend

    model, card, _ = load_model(DETECTOR)
    box_convs = ["heads.0.box", "heads.1.box", "heads.2.box"]
    quantized = quantize_model(model.eval(), card, load_images("shapes", card, 8), float_layers=box_convs)
    output, = [node for node in quantized.module.graph.nodes if node.op == "output"]

    def ops_back_to_conv(node) -> list:
        ops = []
        while node.op == "call_function" and str(node.target) not in CONV_OPS:
            ops.append(str(node.target))
            node = node.args[0]
        return ops

    chains = [ops_back_to_conv(node) for node in output.args[0]]
    assert len(chains) == 6 and all("aten.sigmoid.default" in chain for chain in chains), chains
    assert not any("quantize" in op for chain in chains[:3] for op in chain), chains[:3]
    assert all(any("dequantize" in op for op in chain) for chain in chains[3:]), chains[3:]
    path = str(tmp_path / "detector-int8.tflite")
    to_tflite.convert(None, card, path, "int8", quantized)
    backend = open_backend(path)  # outputs in the model's order: 3 box levels, then 3 class levels
    assert [quant is None for quant in backend.output_quant] == [True] * 3 + [False] * 3, backend.output_quant


def test_detector_qat_loss_is_the_training_loss_on_the_deployed_outputs():
    """QAT trains the deployed graph, whose detector outputs are probabilities; the loss
    recovered from them matches the training loss computed from the logits."""
    import torch

    from edgecnn.training.checkpoint import load_model
    from edgecnn.models.detector import flatten_cells
    from edgecnn.compress.quantize.qat import qat_task

    model, card, _ = load_model(DETECTOR)
    model.eval()
    task = qat_task(card, "shapes", seed=0, max_images=8)
    batch = task.collate([task.train_dataset[i] for i in range(8)])

    class Logits(torch.nn.Module):  # the training-mode outputs, with the eval-mode BatchNorm statistics
        def forward(self, x):
            boxes, scores = model.level_maps(x)
            return [flatten_cells(m) for m in boxes], [flatten_cells(m) for m in scores]

    with torch.no_grad():
        from_logits = float(task.loss(Logits(), batch))
        from_outputs = float(task.deployed_loss(model(batch[0]), batch))
        broken = float(task.deployed_loss([1 - o for o in model(batch[0])], batch))  # logits of the wrong sign
    assert from_outputs == pytest.approx(from_logits, rel=0.05)
    assert broken > 2 * from_logits


@pytest.mark.slow(60)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_detector_quantization_aware_training_keeps_its_float_layers(tmp_path):
    """QAT on a detector: fine-tuned through its deployed graph with the box convs left
    float, scored with the same mAP as the fp32 model, and saved as an int8 program."""
    from edgecnn.training.checkpoint import load_model
    from edgecnn.data.detection import load_detection
    from edgecnn.tasks.detect.metrics import coco_map
    from edgecnn.training.evaluate import torch_predictor
    from edgecnn.compress.quantize.calibration import load_images
    from edgecnn.compress.quantize.program import load_quantized, save_quantized
    from edgecnn.compress.quantize.qat import quantization_aware_training
    from edgecnn.tasks.detect.training import predict_detections

    model, card, _ = load_model(DETECTOR)
    model.eval()
    box_convs = ["heads.0.box", "heads.1.box", "heads.2.box"]
    calibration = load_images("shapes", card, 32)
    quantized = quantization_aware_training(model, card, "shapes", 1, calibration, float_layers=box_convs,
                                            max_images=32, log=lambda m: None)
    assert quantized.card.quantization["float_layers"] == box_convs and quantized.card.layout == "nhwc"
    convs = [n for n in quantized.module.graph.nodes if str(n.target).startswith("aten.conv2d")]
    float_weights = sorted(str(n.args[1].target) for n in convs if "dequantize" not in str(n.args[1].target))
    assert float_weights == [f"wrapped.{name}.weight" for name in box_convs] and len(convs) > 70
    val = load_detection("shapes", "val", count=100)

    def map50_95(predict, model_card):
        found = predict_detections(predict, val, model_card, list(range(len(val))))
        return coco_map(card.labels, val.boxes, val.classes, found)["map50_95"]

    fp32, int8 = map50_95(torch_predictor(model), card), map50_95(quantized.predict, quantized.card)
    assert int8 >= fp32 - 0.03, (fp32, int8)
    program = tmp_path / "detector-qat.pt2"
    save_quantized(program, quantized, np.zeros((2, *card.input_size, 3), np.float32))
    assert load_quantized(program).card.quantization["scheme"] == "pt2e-symmetric-qat"
