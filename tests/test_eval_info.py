"""`edgecnn eval` and `edgecnn info` on checkpoints, and their bad-input paths."""
import json

import pytest
import torch

from conftest import assert_one_line_error, run_cli, run_cli_batch
from edgecnn.training.checkpoint import load_checkpoint


@pytest.fixture
def digits_ckpt(tiny_digits_lenet):
    return tiny_digits_lenet


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_eval_json_matches_the_training_measurement(digits_ckpt, tmp_path):
    plot = tmp_path / "cm.png"
    result = run_cli("eval", digits_ckpt, "--data", "digits", "--json", "--plot", plot)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["images"] == 1000 and report["split"] == "val"
    assert report["top1"] == pytest.approx(load_checkpoint(digits_ckpt)["card"]["metrics"]["top1"], abs=1e-9)
    assert len(report["per_class"]) == 10
    assert sum(c["support"] for c in report["per_class"]) == 1000
    confusion = torch.tensor(report["confusion"])
    assert int(confusion.trace()) == round(report["top1"] * 1000)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_eval_table_and_default_plot_path(digits_ckpt):
    result = run_cli("eval", digits_ckpt)  # dataset taken from the card
    assert result.returncode == 0, result.stderr
    assert "top-1 accuracy" in result.stdout and "precision" in result.stdout
    assert (digits_ckpt.parent / "best-val-confusion.png").exists()


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_info_reports_card_parameters_and_macs(digits_ckpt):
    result = run_cli("info", digits_ckpt, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["card"]["architecture"]["name"] == "lenet5"
    assert info["parameters"] == sum(t.numel() for k, t in load_checkpoint(digits_ckpt)["model"].items()
                                     if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert info["macs"] > 0
    text = run_cli("info", digits_ckpt).stdout
    assert "MACs" in text and "lenet5" in text


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_unreadable_and_foreign_checkpoints(tmp_path, digits_ckpt):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(digits_ckpt.read_bytes()[:5000])
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    cases = [((command, path), message) for command in ("eval", "info") for path, message in (
        (tmp_path / "missing.pt", "not found"), (truncated, "cannot read checkpoint"),
        (text, "cannot read checkpoint"), (foreign, "not an edgecnn checkpoint"))]
    cases.append((("eval", digits_ckpt, "--data", tmp_path / "nodata"), "not found"))
    for result, (_, message) in zip(run_cli_batch(*(command for command, _ in cases)), cases):
        assert_one_line_error(result, contains=message)


@pytest.mark.slow  # in CI; `pytest -m 'not slow'` is the inner loop
def test_output_piped_into_a_closed_reader_is_not_a_traceback():
    import subprocess
    import sys

    result = subprocess.run(f"'{sys.executable}' -m edgecnn info | head -1", shell=True, capture_output=True,
                            text=True, timeout=120)
    assert "Traceback" not in result.stderr and result.stdout.strip()
