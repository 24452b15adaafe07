"""The detector: separate box/score outputs, a loss that learns, mAP evaluation, CLI."""
import json

import pytest
import torch

from conftest import assert_one_line_error, run_cli, run_cli_batch
from edgecnn.training.checkpoint import load_model
from edgecnn.data.detection import load_shapes_detection
from edgecnn.models.detector import MobileNetDetector, tap_expansions
from edgecnn.models.mobilenet_v2 import InvertedResidual
from edgecnn.runtime.heads.ltrb_sigmoid import cell_centres
from edgecnn.core.card import ModelCard
from edgecnn.tasks.detect.training import TorchDetection, collate, training_sizes
from edgecnn.tasks.detect.loss import DetectionLoss, giou, pairwise_iou
from edgecnn.training.train import TrainConfig, train


@pytest.mark.parametrize("backbone", ["mobilenet_v2", *(pytest.param(name, marks=pytest.mark.slow) for name in
                                      ("mobilenet_v3_small", "mobilenet_v3_large", "mobilenet_v1"))])
def test_outputs_are_separate_normalised_boxes_and_scores(backbone):
    model = MobileNetDetector(3, backbone, 0.5).eval()
    with torch.no_grad():
        outputs = model(torch.randn(2, 3, 128, 160))
    boxes, scores = outputs[:3], outputs[3:]
    cells = [16 * 20, 8 * 10, 4 * 5]
    assert [b.shape for b in boxes] == [(2, c, 4) for c in cells]
    assert [s.shape for s in scores] == [(2, c, 3) for c in cells]
    for t in outputs:
        assert float(t.min()) >= 0 and float(t.max()) <= 1


def test_expansion_taps_split_the_next_block_exactly():
    torch.manual_seed(0)
    block = InvertedResidual(16, 32, stride=2, expand_ratio=6).eval()
    layers = [torch.nn.Conv2d(3, 16, 3, padding=1), block, torch.nn.Conv2d(32, 32, 1)]
    split, taps, channels = tap_expansions(layers, [0, 2], [16, 32])
    assert taps == [1, 3] and channels == [96, 32]
    x = torch.randn(2, 3, 24, 24)
    with torch.no_grad():
        tapped = torch.nn.Sequential(*split[:taps[0] + 1])(x)
        assert tapped.shape == (2, 96, 24, 24)  # the wide expansion, before the stride-2 depthwise
        torch.testing.assert_close(torch.nn.Sequential(*split)(x), torch.nn.Sequential(*layers)(x))


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_expansion_taps_widen_the_neck_inputs_and_survive_a_checkpoint(tmp_path):
    from edgecnn.training.checkpoint import save_checkpoint

    model = MobileNetDetector(3, "mobilenet_v2", 0.5, tap="expansion").eval()
    assert [lateral[0].in_channels for lateral in model.laterals] == [96, 288, 160]
    card = ModelCard(task="detect", labels=["a", "b", "c"], input_size=(96, 96), head={"strides": [8, 16, 32]},
                     architecture={"name": "detector", "backbone": "mobilenet_v2", "width": 0.5, "neck": 128,
                                   "tap": "expansion"})
    save_checkpoint(tmp_path / "m.pt", card, model)
    loaded, _, _ = load_model(tmp_path / "m.pt")
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        for a, b in zip(model(x), loaded.eval()(x)):
            torch.testing.assert_close(a, b)


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_loss_drives_a_batch_towards_its_boxes():
    torch.manual_seed(0)
    data = load_shapes_detection("train", size=128, count=8)
    model = MobileNetDetector(3, "mobilenet_v2", 0.5)
    card = ModelCard(task="detect", labels=data.labels, input_size=(128, 128), head={"strides": [8, 16, 32]})
    dataset = TorchDetection(data, card, augment=None, seed=0)
    batch = collate([dataset[i] for i in range(len(dataset))])
    loss_fn = DetectionLoss(3)
    centres = torch.from_numpy(cell_centres((128, 128), (8, 16, 32)))
    optimizer = torch.optim.AdamW(model.parameters(), 3e-3)
    losses = []
    for _ in range(40):
        model.train()
        box_logits, class_logits = model(batch[0])
        loss, _ = loss_fn(box_logits, class_logits, centres, (128, 128), *batch[1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_assignment_prefers_cells_inside_the_object():
    loss_fn = DetectionLoss(2, topk=3)
    centres = torch.from_numpy(cell_centres((64, 64), (8, 16, 32)))
    cells = len(centres)
    boxes = torch.cat([centres - 4, centres + 4], -1)[None]
    scores = torch.full((1, cells, 2), 0.5)
    gt = torch.tensor([[[16.0, 16.0, 40.0, 40.0]]])
    targets, assigned = loss_fn.assign(scores, boxes, centres, gt, torch.tensor([[1]]), torch.tensor([[True]]))
    positive = targets.sum(-1)[0] > 0
    assert 1 <= int(positive.sum()) <= 3
    inside = ((centres > 16) & (centres < 40)).all(1)
    assert bool(inside[positive].all())
    assert targets[0, positive, 0].sum() == 0  # only the object's class gets a target
    assert torch.allclose(assigned[0, positive], gt[0, 0].expand(int(positive.sum()), 4))
    assert torch.allclose(pairwise_iou(gt[0], gt[0]), torch.ones(1, 1))


def test_box_loss_weighs_every_positive_equally():
    """A badly placed box (typically of an occluded object) must not get less box loss
    than a good one, as it would if the loss were weighted by the box's IoU."""
    torch.manual_seed(0)
    loss_fn = DetectionLoss(2, topk=4)
    centres = torch.from_numpy(cell_centres((64, 64), (8, 16, 32)))
    box_logits = [torch.randn(1, n, 4) for n in (64, 16, 4)]
    class_logits = [torch.randn(1, n, 2) for n in (64, 16, 4)]
    gt = torch.tensor([[[4.0, 4.0, 30.0, 28.0], [30.0, 34.0, 60.0, 62.0]]])
    classes, valid = torch.tensor([[0, 1]]), torch.tensor([[True, True]])
    _, parts = loss_fn(box_logits, class_logits, centres, (64, 64), gt, classes, valid)
    distances = torch.sigmoid(torch.cat(box_logits, 1)) * 64
    boxes = torch.cat([centres - distances[..., :2], centres + distances[..., 2:]], -1)
    targets, assigned = loss_fn.assign(torch.sigmoid(torch.cat(class_logits, 1)), boxes, centres, gt, classes, valid)
    positive = targets.sum(-1) > 0
    quality = 1 - giou(boxes[positive], assigned[positive])
    assert quality.max() - quality.min() > 0.1  # the positives are placed unequally well
    assert parts["box"] == pytest.approx(float(quality.mean()), rel=1e-5)


def test_progressive_resizing_stages_and_pixel_units():
    assert training_sizes(192, None, 3) == [192] * 3
    assert training_sizes(192, 128, 6) == [128, 128, 160, 160, 192, 192]
    assert training_sizes(192, 96, 10)[-1] == 192 and sorted(training_sizes(192, 96, 10)) == training_sizes(192, 96, 10)
    data = load_shapes_detection("train", size=192, count=2)
    card = ModelCard(task="detect", labels=data.labels, input_size=(192, 192), head={"strides": [8, 16, 32]})
    dataset = TorchDetection(data, card, augment=None, seed=0, sizes=[96, 192])
    small, small_boxes, _ = dataset[0]
    dataset.epoch = 1
    full, full_boxes, _ = dataset[0]
    assert small.shape == (3, 96, 96) and full.shape == (3, 192, 192)
    assert torch.allclose(small_boxes * 2, full_boxes)  # boxes in the pixels of the size trained at


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    out = tmp_path_factory.mktemp("det")
    summary = train(TrainConfig(task="detect", model="mobilenet_v2", width=0.35, data="shapes", imgsz=128,
                                epochs=2, batch=16, max_train_images=96, max_val_images=24, out=str(out),
                                task_options={"progressive_from": 96,  # epoch 1 at 96x96, epoch 2 at 128x128
                                              "mosaic": 1.0, "close_mosaic": 1}),  # epoch 1 on mosaics only
                    log=lambda m: None)
    return out / "last.pt", summary


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_training_writes_a_detector_with_its_card(tiny_detector):
    path, summary = tiny_detector
    model, card, payload = load_model(path)
    assert card.task == "detect" and card.labels == ["circle", "rectangle", "triangle"]
    assert card.head == {"format": "ltrb-sigmoid", "strides": [8, 16, 32]}
    assert card.architecture["neck"] == 128 and model.laterals[0][0].out_channels == 128
    assert set(summary["last"]) >= {"map50_95", "map50"}
    assert 0 <= summary["last"]["map50_95"] <= summary["last"]["map50"] <= 1


def test_a_card_without_a_neck_width_rebuilds_the_earlier_96_channel_detector():
    from edgecnn.training.checkpoint import build_from_card

    card = ModelCard(task="detect", labels=["a", "b"], input_size=(128, 128), head={"strides": [8, 16, 32]},
                     architecture={"name": "detector", "backbone": "mobilenet_v2", "width": 0.5})
    assert build_from_card(card).laterals[0][0].out_channels == 96


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_eval_cli_reports_coco_map_and_draws_predictions(tiny_detector, tmp_path):
    path, _ = tiny_detector
    png = tmp_path / "pred.png"
    result = run_cli("eval", path, "--data", "shapes", "--json", "--plot", png)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["images"] == 300 and [c["label"] for c in report["per_class"]] == ["circle", "rectangle", "triangle"]
    assert 0 <= report["map50_95"] <= 1
    assert png.read_bytes()[:4] == b"\x89PNG"
    text = run_cli("eval", path, "--data", "shapes", "--plot", "").stdout
    assert "mAP@0.5:0.95" in text and "AP@0.5" in text


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_detection_cli_bad_input(tmp_path):
    out = ["--out", tmp_path / "o"]
    cases = {("--data", tmp_path / "nothing"): "not found", ("--model", "lenet5"): "MobileNet backbone",
             ("--imgsz", "100"): "multiple of 32", ("--progressive-from", "224"): "--progressive-from",
             ("--neck", "4"): "--neck", ("--mosaic", "1.5"): "--mosaic", ("--close-mosaic", "-1"): "--close-mosaic"}
    results = run_cli_batch(*(["train", "--task", "detect", *args, *out] for args in cases))
    for result, message in zip(results, cases.values()):
        assert_one_line_error(result, contains=message)
    for classify in run_cli_batch(["train", "--progressive-from", "64", *out], ["train", "--tap", "block", *out]):
        assert_one_line_error(classify, contains="for detectors")


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_detector_runs_on_the_real_video(tiny_detector):
    """Every frame of tree.avi through the shared preprocessing, the model and the shared decode/NMS."""
    import cv2

    from conftest import DATA
    from edgecnn.training.evaluate import torch_predictor
    from edgecnn.runtime.heads.ltrb_sigmoid import decode_levels as decode
    from edgecnn.tasks.detect.task import postprocess
    from edgecnn.core.preprocess import preprocess

    model, card, _ = load_model(tiny_detector[0])
    predict = torch_predictor(model)
    capture = cv2.VideoCapture(str(DATA / "tree.avi"))
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        outputs = predict(preprocess(frame, card))
        corners, probabilities = decode([o[0] for o in outputs[:3]], [o[0] for o in outputs[3:]],
                                        card.input_size, card.head["strides"])
        found = postprocess(corners, probabilities, card.labels, card.input_size, frame.shape[:2], 0.05)
        assert found.boxes.shape[1:] == (4,) and len(found) <= 100
        assert (found.boxes[:, [0, 2]] <= frame.shape[1]).all() and (found.boxes[:, [1, 3]] <= frame.shape[0]).all()
        frames += 1
    assert frames == 68
