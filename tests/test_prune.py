"""edgecnn prune: Torch-Pruning to a MAC target, fine-tuning, the gate, and pruned
checkpoints that load again (weights_only) with their smaller layers."""
import pytest
import json

from conftest import ROOT, assert_one_line_error, run_cli, run_cli_batch

DIGITS = ROOT / "edgecnn" / "assets" / "digits_mobilenet_v2.pt"


@pytest.mark.slow(55)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_prune_half_the_macs_fine_tune_and_reload(tmp_path):
    out = tmp_path / "digits-pruned.pt"
    result = run_cli("prune", DIGITS, "--target-macs", "0.5", "--epochs", "1", "--out", out, "--json", check=True)
    summary = json.loads(result.stdout)
    assert summary["macs_ratio"] <= 0.5 and summary["after"]["parameters"] < summary["before"]["parameters"]
    assert summary["gate"]["passed"] and summary["gate"]["images"] == 1000
    assert summary["before"]["latency_ms"] > 0 and summary["after"]["latency_ms"] > 0
    assert (tmp_path / "digits-pruned-finetune" / "last.pt").is_file()

    from edgecnn.training.checkpoint import load_model
    from edgecnn.models.complexity import complexity

    model, card, _ = load_model(out)
    assert card.architecture["pruned"] and card.metrics["top1"] == summary["gate"]["after"]
    assert complexity(model, (1, 1, *card.input_size))["macs"] == summary["after"]["macs"]
    evaluated = json.loads(run_cli("eval", out, "--json", "--plot", "", check=True).stdout)
    assert abs(evaluated["top1"] - summary["gate"]["after"]) < 1e-9


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_unreachable_target_and_bad_input_are_one_line(tmp_path):
    out = ["--out", tmp_path / "p.pt"]
    cases = [((DIGITS, "--target-macs", "0.001", "--epochs", "0"), "cannot be reached"),
             ((DIGITS, "--target-macs", "1.5"), "between 0 and 1"),
             ((DIGITS,), "one of the arguments"),
             ((ROOT / "edgecnn" / "assets" / "shapes_detector.pt", "--target-macs", "0.5", "--importance", "taylor"),
              "taylor")]
    for result, (_, message) in zip(run_cli_batch(*(["prune", *args, *out] for args, _ in cases)), cases):
        assert_one_line_error(result, 2, message)
    assert not (tmp_path / "p.pt").exists()


@pytest.mark.slow(35)  # in CI; `pytest -m 'not slow'` is the inner loop
def test_a_refused_prune_leaves_no_weights_behind_unless_asked(tmp_path):
    args = ["prune", DIGITS, "--target-macs", "0.2", "--epochs", "0", "--max-drop", "0.5"]
    refused, kept = run_cli_batch([*args, "--out", tmp_path / "a.pt"], [*args, "--out", tmp_path / "b.pt", "--keep-work"])
    for result in (refused, kept):
        assert result.returncode == 3, result.stderr
        assert "not written" in result.stderr
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "a-finetune").exists()
    assert not (tmp_path / "b.pt").exists() and (tmp_path / "b-finetune" / "pruned.pt").is_file()
