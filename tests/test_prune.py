"""edgecnn prune: Torch-Pruning to a MAC or latency target in one round or several,
fine-tuning (distilled from the unpruned model), the gate, and pruned checkpoints that
load again (weights_only) with their smaller layers."""
import pytest
import json

import torch

from conftest import ROOT, assert_one_line_error, run_cli, run_cli_batch

DIGITS = ROOT / "edgecnn" / "assets" / "digits_mobilenet_v2.pt"


@pytest.mark.slow(80)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_prune_half_the_macs_fine_tune_and_reload(tmp_path):
    out = tmp_path / "digits-pruned.pt"
    # timed as fp32 ONNX: converting both models to int8 TFLite (the default, whose meter
    # test_the_latency_meter_times_the_file_that_will_run checks) would double the test's time
    result = run_cli("prune", DIGITS, "--target-macs", "0.5", "--epochs", "1", "--latency-on", "onnx-fp32",
                     "--out", out, "--json", check=True)
    summary = json.loads(result.stdout)
    assert summary["macs_ratio"] <= 0.5 and summary["after"]["parameters"] < summary["before"]["parameters"]
    assert summary["gate"]["passed"] and summary["gate"]["images"] == 1000
    assert summary["before"]["latency_ms"] > 0 and summary["after"]["latency_ms"] > 0
    assert summary["latency_on"] == "fp32 onnx on onnxruntime"
    assert summary["distill"] == "logits" and summary["teacher"] == str(DIGITS) and summary["steps"] == 1
    assert (summary["optimizer"], summary["lr"], summary["weight_decay"]) == ("sgd", 0.01, 5e-4)  # the task's
    assert (tmp_path / "digits-pruned-finetune" / "last.pt").is_file()

    from edgecnn.training.checkpoint import load_model
    from edgecnn.models.complexity import complexity

    model, card, _ = load_model(out)
    assert card.architecture["pruned"] and card.metrics["top1"] == summary["gate"]["after"]
    assert card.metrics["max_drop_points"] == summary["gate"]["max_drop"]
    assert complexity(model, (1, 1, *card.input_size))["macs"] == summary["after"]["macs"]
    evaluated = json.loads(run_cli("eval", out, "--json", "--plot", "", check=True).stdout)
    assert abs(evaluated["top1"] - summary["gate"]["after"]) < 1e-9


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_unreachable_target_and_bad_input_are_one_line(tmp_path):
    out = ["--out", tmp_path / "p.pt", "--latency-on", "onnx-fp32"]
    cases = [((DIGITS, "--target-macs", "0.001", "--epochs", "0"), "cannot be reached"),
             ((DIGITS, "--target-macs", "1.5"), "between 0 and 1"),
             ((DIGITS,), "one of the arguments"),
             ((ROOT / "edgecnn" / "assets" / "shapes_detector.pt", "--target-macs", "0.5", "--importance", "taylor"),
              "taylor")]
    for result, (_, message) in zip(run_cli_batch(*(["prune", *args, *out] for args, _ in cases)), cases):
        assert_one_line_error(result, 2, message)
    assert not (tmp_path / "p.pt").exists()


@pytest.mark.slow(15)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_a_refused_prune_leaves_no_weights_behind_unless_asked(tiny_digits_lenet, tmp_path):
    args = ["prune", tiny_digits_lenet, "--target-macs", "0.6", "--epochs", "0", "--max-drop", "0.5", "--latency-on", "onnx-fp32"]
    refused, kept = run_cli_batch([*args, "--out", tmp_path / "a.pt"], [*args, "--out", tmp_path / "b.pt", "--keep-work"])
    for result in (refused, kept):
        assert result.returncode == 3, result.stderr
        assert "not written" in result.stderr
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "a-finetune").exists()
    assert not (tmp_path / "b.pt").exists() and (tmp_path / "b-finetune" / "pruned.pt").is_file()


def test_rounds_share_the_epoch_budget():
    from edgecnn.compress.prune import round_epochs, round_targets

    assert round_epochs(5, 1) == [5] and round_epochs(0, 1) == [0]
    assert round_epochs(5, 2) == [2, 3] and round_epochs(6, 3) == [2, 2, 2] and round_epochs(5, 5) == [1] * 5
    assert round_epochs(7, 3) == [2, 2, 3]  # the rounds nearest the target take the remainder
    assert round_targets(12, 1) == [12] and round_targets(12, 3) == [4, 8, 12] and round_targets(13, 4)[-1] == 13


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_rounds_reach_the_structure_the_search_found():
    """The target is turned into pruner steps on a copy; the model then reaches exactly
    that structure in rounds, whatever its weights became in between (fine-tuning)."""
    from edgecnn.compress.prune import (PruneOptions, advance, new_pruner, pruned_copy, round_targets,
                                        steps_to_target)
    from edgecnn.models.complexity import complexity
    from edgecnn.training.checkpoint import layer_shapes, load_model

    model, card, _ = load_model(DIGITS)
    shape = (1, 1, *card.input_size)
    options, example = PruneOptions(target_macs=0.5), torch.zeros(shape)
    macs = lambda m: float(complexity(m, shape)["macs"])  # noqa: E731
    total, found = steps_to_target(model, card, options, macs, 0.5 * macs(model), example)
    assert 1 < total < 40 and found <= 0.5 * macs(model) and macs(model) > found  # the model itself is untouched
    pruner = new_pruner(model.train(), card, options, example)
    torch.manual_seed(0)
    for step in round_targets(total, 3):
        advance(pruner, model, step, options)
        with torch.no_grad():  # as if fine-tuned: other weights, so other channels rank lowest next round
            for parameter in model.parameters():
                parameter.mul_(1 + 0.5 * torch.rand_like(parameter))
    assert macs(model) == found
    reference = pruned_copy(load_model(DIGITS)[0], card, options, example, total)  # one shot, the original weights
    assert layer_shapes(model) == layer_shapes(reference)


@pytest.mark.slow(20)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_a_latency_target_is_bisected_and_the_final_model_timed_alike(tiny_digits_lenet, tmp_path):
    """--target-latency-ms: the pruner's steps are bisected with the latency meter (about
    log2(40) measurements, not one per step) to the same structure a walk over every step
    finds, and the final model is timed by the same meter. The meter here is a stand-in
    whose latency is the model's MACs, so the search's answer is known exactly."""
    from edgecnn.compress.prune import PruneOptions, prune_checkpoint, steps_to_target
    from edgecnn.models.complexity import complexity
    from edgecnn.training.checkpoint import load_model

    measured = []

    def meter(m, model_card, threads):
        measured.append(float(complexity(m, (1, model_card.channels, *model_card.input_size))["macs"]) / 1e6)
        return measured[-1]

    meter.name = "MACs as milliseconds"
    model, card, _ = load_model(DIGITS)
    example = torch.zeros(1, 1, *card.input_size)
    unpruned, target = meter(model, card, 1), 0.6 * meter(model, card, 1)
    walked = steps_to_target(model, card, PruneOptions(), lambda m: meter(m, card, 1), target, example)
    measured.clear()
    bisected = steps_to_target(model, card, PruneOptions(), lambda m: meter(m, card, 1), target, example,
                               unpruned=unpruned, log=lambda m: None)
    assert bisected == walked and len(measured) <= 7

    model, card, _ = load_model(tiny_digits_lenet)
    target = 0.7 * meter(model, card, 1)
    measured.clear()
    options = PruneOptions(target_latency_ms=target, epochs=0, force=True, latency_ms=meter, distill="off")
    summary = prune_checkpoint(str(tiny_digits_lenet), str(tmp_path / "p.pt"), options, log=lambda m: None)
    assert summary["latency_on"] == "MACs as milliseconds" and summary["target_latency_met"]
    assert summary["searched_latency_ms"] == summary["after"]["latency_ms"] == measured[-1] <= target
    assert len(measured) <= 2 + 6  # before, the search and the final model


@pytest.mark.slow(25)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_the_latency_meter_times_the_file_that_will_run(tiny_digits_lenet, monkeypatch):
    """DeployedLatency converts the model to the chosen format and precision and hands
    that file to the bench's isolated measurement on its runtime (a stand-in here)."""
    import os

    import edgecnn.bench.measure as measure
    from converters.latency import DeployedLatency
    from edgecnn.runtime.precision import file_precision
    from edgecnn.training.checkpoint import load_model

    timed = []

    def fake_run_isolated(config, progress=None, timeout=None):
        timed.append((config.backend, os.path.splitext(config.model)[1], file_precision(config.model), config.threads))
        return {"status": "ok", "latency_ms": {"p50": 0.25}}

    monkeypatch.setattr(measure, "run_isolated", fake_run_isolated)
    model, card, _ = load_model(tiny_digits_lenet)
    for deployment, expected in (("tflite-int8", ("litert", ".tflite", "int8", 1)),
                                 ("onnx-fp32", ("onnxruntime", ".onnx", "fp32", 1))):
        meter = DeployedLatency(deployment)
        assert meter(model, card, 1) == 0.25 and timed[-1] == expected
    assert DeployedLatency("tflite-int8").name == "int8 tflite on litert"


@pytest.mark.slow(45)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_iterative_pruning_fine_tunes_after_each_round_and_the_gate_still_refuses(tiny_digits_lenet, tmp_path):
    """--steps 2 --epochs 2: two rounds of one epoch each, distilled (outputs and feature
    attention, with AdamW), each with its own checkpoints; the same run held to an
    impossible budget is refused and leaves nothing."""
    args = ["prune", tiny_digits_lenet, "--target-macs", "0.6", "--steps", "2", "--epochs", "2", "--latency-on",
            "onnx-fp32", "--distill", "features", "--optimizer", "adamw", "--lr", "0.003", "--json"]
    passed, refused = run_cli_batch([*args, "--out", tmp_path / "a.pt", "--max-drop", "100"],
                                    [*args, "--out", tmp_path / "b.pt", "--max-drop", "-100"])
    assert passed.returncode == 0, passed.stderr
    summary = json.loads(passed.stdout)
    assert [r["epochs"] for r in summary["rounds"]] == [1, 1] and summary["steps"] == 2
    steps = [r["pruner_steps"] for r in summary["rounds"]]
    assert steps[0] <= steps[1] and summary["macs_ratio"] <= 0.6 and summary["distill"] == "features"
    assert (summary["optimizer"], summary["lr"], summary["weight_decay"]) == ("adamw", 0.003, 0.01)
    assert summary["latency_on"] == "fp32 onnx on onnxruntime"
    for index in (1, 2):
        assert (tmp_path / "a-finetune" / f"round-{index}" / "last.pt").is_file()
    assert sum("distilling from" in line and "feature attention" in line for line in passed.stderr.splitlines()) == 2
    assert refused.returncode == 3 and "not written" in refused.stderr, refused.stderr
    assert not (tmp_path / "b.pt").exists() and not (tmp_path / "b-finetune").exists()


def test_the_fine_tuning_recipe_is_the_tasks_unless_named():
    """Detectors and segmenters fine-tune with AdamW (as they train), a classifier with
    SGD; a detector's and a segmenter's channels are ranked by LAMP across the network, a
    classifier's by magnitude within each layer; whatever is named wins."""
    from edgecnn.compress.prune import PruneOptions, fine_tuning_decay, with_task_recipe
    from edgecnn.training.distill import read_teacher_card

    detector = read_teacher_card(str(ROOT / "edgecnn" / "assets" / "shapes_detector.pt"))
    digits = read_teacher_card(str(DIGITS))
    recipe = with_task_recipe(PruneOptions(), detector)
    assert (recipe.optimizer, recipe.lr, fine_tuning_decay(recipe)) == ("adamw", 0.006, 0.01)
    assert (recipe.importance, recipe.scope) == ("lamp", "global")
    segmenter = detector.replace(task="segment", architecture={"name": "segmenter"})
    recipe = with_task_recipe(PruneOptions(), segmenter)
    assert (recipe.optimizer, recipe.lr) == ("adamw", 0.006)
    assert (recipe.importance, recipe.scope) == ("lamp", "global")
    recipe = with_task_recipe(PruneOptions(), digits)
    assert (recipe.optimizer, recipe.lr, fine_tuning_decay(recipe)) == ("sgd", 0.01, 5e-4)
    assert (recipe.importance, recipe.scope) == ("magnitude", "layer")
    named = with_task_recipe(PruneOptions(optimizer="sgd", lr=0.02, weight_decay=0.0, importance="magnitude",
                                          scope="layer"), detector)
    assert (named.optimizer, named.lr, fine_tuning_decay(named)) == ("sgd", 0.02, 0.0)
    assert (named.importance, named.scope) == ("magnitude", "layer")


def test_global_ranking_cuts_layers_unevenly_and_still_reaches_the_target():
    """--scope global: channels ranked across the network reach the same MAC target with
    another structure than the per-layer cut (some layers keep more), and no layer loses
    more than the pruner's cap."""
    from edgecnn.compress.prune import MAX_PRUNING_RATIO, PruneOptions, pruned_copy, steps_to_target
    from edgecnn.models.complexity import complexity
    from edgecnn.training.checkpoint import layer_shapes, load_model

    model, card, _ = load_model(DIGITS)
    shape, example = (1, 1, *card.input_size), torch.zeros((1, 1, *card.input_size))
    macs = lambda m: float(complexity(m, shape)["macs"])  # noqa: E731
    shapes = {}
    for scope in ("layer", "global"):
        options = PruneOptions(target_macs=0.5, importance="lamp", scope=scope)
        total, found = steps_to_target(model, card, options, macs, 0.5 * macs(model), example)
        pruned = pruned_copy(model, card, options, example, total)
        assert macs(pruned) == found <= 0.5 * macs(model)
        shapes[scope] = layer_shapes(pruned)
    assert shapes["global"] != shapes["layer"]
    original = layer_shapes(model)
    kept = [shapes["global"][name]["out_channels"] / layer["out_channels"] for name, layer in original.items()
            if "out_channels" in layer]
    assert min(kept) >= 1 - MAX_PRUNING_RATIO - 0.05 and max(kept) - min(kept) > 0.2, kept
