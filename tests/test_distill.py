"""Distillation (edgecnn.training.distill): each task's loss against a teacher is zero
for the teacher itself and falls as a student learns it; a student trained against a
teacher ends nearer to it than one trained on the labels alone; a teacher of another
task or other labels is one line."""
import json

import pytest
import torch

from conftest import ROOT, assert_one_line_error, run_cli, run_cli_batch

DIGITS = ROOT / "edgecnn" / "assets" / "digits_mobilenet_v2.pt"
DETECTOR = ROOT / "edgecnn" / "assets" / "shapes_detector.pt"


def learn(distill_loss, teacher, student, steps=60, lr=0.1):
    """Fit `student` (tensors, or nested lists of them) to `teacher` by the loss alone;
    the loss before and after."""
    leaves = flatten(student)
    for leaf in leaves:
        leaf.requires_grad_(True)
    optimizer = torch.optim.Adam(leaves, lr=lr)
    first = float(distill_loss(student, teacher).detach())
    for _ in range(steps):
        optimizer.zero_grad()
        distill_loss(student, teacher).backward()
        optimizer.step()
    return first, float(distill_loss(student, teacher).detach())


def flatten(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [leaf for item in outputs for leaf in flatten(item)]


def test_classifier_and_segmenter_distillation_is_a_kl_the_student_can_close():
    from edgecnn.tasks.classify.training import softened_kl
    from edgecnn.tasks.segment.training import SegmentTraining

    torch.manual_seed(0)
    teacher = torch.randn(16, 10) * 3
    assert float(softened_kl(teacher, teacher, 4.0, dim=1)) == pytest.approx(0.0, abs=1e-6)
    loss = lambda student, target: softened_kl(student, target, 4.0, dim=1)  # noqa: E731
    first, last = learn(loss, teacher, torch.zeros(16, 10))
    assert first > 0.5 and last < 0.02 * first

    segmenter = SegmentTraining.__new__(SegmentTraining)  # distill_loss needs no data
    maps = torch.randn(2, 4, 12, 12) * 2
    assert float(segmenter.distill_loss(maps, maps, None)) == pytest.approx(0.0, abs=1e-6)
    first, last = learn(lambda s, t: segmenter.distill_loss(s, t, None), maps, torch.zeros(2, 4, 12, 12))
    assert first > 0.3 and last < 0.05 * first


def test_detector_distillation_follows_the_class_maps_and_the_confident_boxes():
    """Against the bundled detector's own outputs on real scenes: zero for the teacher;
    a student that starts from other outputs is pulled to its class maps and, where
    the teacher is confident, to its boxes."""
    from edgecnn.compress.quantize.qat import qat_task
    from edgecnn.tasks.detect.loss import decode_boxes
    from edgecnn.tasks.detect.training import DISTILL_CONFIDENCE
    from edgecnn.training.checkpoint import load_model

    model, card, _ = load_model(DETECTOR)
    task = qat_task(card, "shapes", seed=0, max_images=4)
    batch = task.collate([task.train_dataset[i] for i in range(4)])
    with torch.no_grad():
        teacher = task.teacher_outputs(model.eval(), batch)
    assert float(task.distill_loss(teacher, teacher, batch)) == pytest.approx(0.0, abs=1e-4)
    confident = torch.sigmoid(torch.cat(teacher[1], 1)).amax(-1) >= DISTILL_CONFIDENCE
    assert 0 < int(confident.sum()) < confident.numel() // 4  # objects, not the background

    torch.manual_seed(0)
    student = ([torch.randn_like(t) for t in teacher[0]], [torch.randn_like(t) - 3 for t in teacher[1]])
    first, last = learn(lambda s, t: task.distill_loss(s, t, batch), teacher, student, steps=150, lr=0.05)
    assert last < 0.1 * first, (first, last)
    centres = task.centres(batch)
    ours = decode_boxes(torch.cat(student[0], 1), centres, card.input_size)[confident]
    theirs = decode_boxes(torch.cat(teacher[0], 1), centres, card.input_size)[confident]
    assert float((ours - theirs).abs().mean()) < 2.0  # pixels, on a 192x192 input


def test_feature_attention_compares_maps_of_any_width_and_can_be_learned():
    """Attention transfer: zero for the teacher's own maps, blind to channel count and
    scale (a pruned student has fewer channels), and a student's map can be pulled to
    where the teacher's is active."""
    from edgecnn.training.distill import attention_loss, spatial_attention

    torch.manual_seed(0)
    teacher = [torch.randn(2, 32, 12, 12).relu(), torch.randn(2, 32, 6, 6).relu()]
    assert float(attention_loss(teacher, teacher)) == pytest.approx(0.0, abs=1e-6)
    narrow = [t[:, :1].expand(-1, 8, -1, -1) * 3 for t in teacher]  # 8 channels, one pattern, another scale
    assert torch.allclose(spatial_attention(narrow[0]), spatial_attention(teacher[0][:, :1]), atol=1e-6)
    first, last = learn(attention_loss, teacher, [torch.rand(2, 8, 12, 12), torch.rand(2, 8, 6, 6)], steps=150,
                        lr=0.05)
    assert first > 0.1 and last < 0.1 * first, (first, last)
    with pytest.raises(Exception, match="does not line up"):
        attention_loss([torch.zeros(2, 8, 12, 12)], [torch.zeros(2, 8, 6, 6)])


def test_feature_distillation_taps_the_maps_before_each_output_layer():
    """`--distill features` on the bundled detector: the teacher against itself adds
    nothing to the output loss; a student with other weights gets an attention term
    whose gradient reaches its head stems; the taps keep nothing from other passes
    (validation)."""
    import copy

    from edgecnn.compress.quantize.qat import qat_task
    from edgecnn.tasks.detect.training import feature_layers
    from edgecnn.training.checkpoint import load_model
    from edgecnn.training.distill import Distilled, blend, frozen

    model, card, _ = load_model(DETECTOR)
    task = qat_task(card, "shapes", seed=0, max_images=4)
    batch = task.collate([task.train_dataset[i] for i in range(4)])
    teacher = frozen(copy.deepcopy(model))
    student = copy.deepcopy(model).train()
    for module in student.modules():  # the teacher's BatchNorm statistics, so its own maps come out
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    plain, featured = Distilled(task, teacher, 0.5), Distilled(task, teacher, 0.5, feature_layers)
    with torch.no_grad():
        assert float(featured.loss(student, batch)) == pytest.approx(float(plain.loss(student, batch)), rel=1e-4)
    torch.manual_seed(0)
    with torch.no_grad():
        for head in student.heads:
            for parameter in head.stem.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.2)
    student.zero_grad()
    loss = featured.loss(student, batch)
    outputs_only = blend(task, *featured.paired_outputs(student, batch), batch, 0.5)
    assert float(loss) > float(outputs_only) + 1e-3
    loss.backward()
    assert all(head.stem[0][0][0].weight.grad is not None for head in student.heads)
    student.eval()
    with torch.no_grad():
        student(batch[0])
    assert featured.student_taps.maps == [] and featured.teacher_taps.maps == []
    assert not featured.student_taps.on and not featured.teacher_taps.on


@pytest.mark.slow(30)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_a_student_trained_against_the_teacher_ends_nearer_to_it(tiny_digits_lenet, tmp_path):
    """The training loop on a tiny model: from the same start, data order and epochs, a
    LeNet-5 distilled from a trained one ends with a lower distillation loss against it
    on held-out digits than one trained on the labels alone."""
    from edgecnn.core.preprocess import preprocess_batch
    from edgecnn.data import load_classification
    from edgecnn.tasks.classify.training import DISTILL_TEMPERATURE, softened_kl
    from edgecnn.training.checkpoint import load_model
    from edgecnn.training.train import TrainConfig, train

    teacher, card, _ = load_model(tiny_digits_lenet)
    held_out = load_classification("digits", "val").take(range(0, 1000, 4))
    images = torch.from_numpy(preprocess_batch(held_out.images, card))
    with torch.no_grad():
        target = teacher(images)
    gaps = {}
    for mode in ("off", "logits"):
        out = tmp_path / mode
        train(TrainConfig(model="lenet5", data="digits", imgsz=32, epochs=2, batch=64, max_train_images=2048,
                          seed=3, out=str(out), distill=mode, teacher=str(tiny_digits_lenet) if mode != "off" else None,
                          distill_weight=0.9), log=lambda m: None)
        student = load_model(out / "last.pt")[0]
        with torch.no_grad():
            gaps[mode] = float(softened_kl(student(images), target, DISTILL_TEMPERATURE, dim=1))
    assert gaps["logits"] < 0.8 * gaps["off"], gaps


def test_a_teacher_must_read_the_student_batch_and_name_its_labels():
    from edgecnn.core.errors import UserError
    from edgecnn.training.checkpoint import load_model
    from edgecnn.training.distill import check_teacher

    _, digits, _ = load_model(DIGITS)
    _, detector, _ = load_model(DETECTOR)
    check_teacher(digits, digits.replace(architecture={**digits.architecture, "pruned": True}), "t.pt")
    for teacher, expected in ((detector, "its task is detect"), (digits.replace(labels=digits.labels[::-1]), "labels"),
                              (digits.replace(input_size=(32, 32)), "input size"),
                              (digits.replace(mean=(0.0,)), "normalisation")):
        with pytest.raises(UserError, match=expected):
            check_teacher(teacher, digits, "t.pt")


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_bad_teachers_and_steps_are_one_line(tmp_path):
    """Before any work: a teacher of another task or other labels (prune and QAT), more
    rounds than epochs, a weight outside 0..1, distillation options without QAT."""
    from edgecnn.training.checkpoint import load_model, save_checkpoint

    model, card, _ = load_model(DIGITS)
    relabelled = tmp_path / "relabelled.pt"
    save_checkpoint(relabelled, card.replace(labels=[f"digit {label}" for label in card.labels]), model)
    out = ["--out", tmp_path / "p.pt"]
    cases = [(["prune", DIGITS, "--target-macs", "0.5", "--teacher", DETECTOR, *out], "its task is detect"),
             (["prune", DIGITS, "--target-macs", "0.5", "--teacher", relabelled, *out], "its labels are digit 0"),
             (["prune", DIGITS, "--target-macs", "0.5", "--steps", "6", "--epochs", "5", *out],
              "--steps 6 needs at least 6 fine-tuning epochs"),
             (["prune", DIGITS, "--target-macs", "0.5", "--steps", "0", *out], "--steps must be >= 1"),
             (["prune", DIGITS, "--target-macs", "0.5", "--distill-weight", "1.5", *out], "in 0..1"),
             (["prune", DIGITS, "--target-macs", "0.5", "--distill", "off", "--teacher", DIGITS, *out], "--teacher"),
             (["quantize", DIGITS, "--qat", "--teacher", DETECTOR, "--out", tmp_path / "q.pt2"], "its task is detect"),
             (["quantize", DIGITS, "--teacher", DIGITS, "--out", tmp_path / "q.pt2"], "(--qat)"),
             (["quantize", DIGITS, "--qat", "--distill", "features", "--out", tmp_path / "q.pt2"],
              "invalid choice: 'features'"),
             (["prune", DIGITS, "--target-macs", "0.5", "--weight-decay", "-1", *out], "--weight-decay must be >= 0")]
    for result, (_, message) in zip(run_cli_batch(*(command for command, _ in cases)), cases):
        assert_one_line_error(result, 2, message)
    assert not list(tmp_path.glob("p*")) and not (tmp_path / "q.pt2").exists()


@pytest.mark.slow(20)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_qat_distils_from_the_float_model_by_default(tiny_digits_lenet, tmp_path):
    # labels only (no teacher) records a weight of 0: test_quantization_aware_training_gives_a_full_int8_classifier
    distilled = run_cli("quantize", tiny_digits_lenet, "--qat", "--epochs", "1", "--out", tmp_path / "distilled.pt2",
                        "--json")
    assert distilled.returncode == 0, distilled.stderr
    from edgecnn.compress.quantize.program import load_quantized

    assert load_quantized(tmp_path / "distilled.pt2").card.quantization["qat_distill_weight"] == 0.5
    assert json.loads(distilled.stdout)["gate"]["passed"]
