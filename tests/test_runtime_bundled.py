"""`edgecnn run` with no model: the bundled file that passed its gate and is fastest here."""
import json

import pytest

from conftest import run_cli
from converters.card_embed import embed_tflite
from edgecnn.assets import RUNTIME_DEFAULT, RUNTIME_FP32, RUNTIME_INT8, RUNTIME_VARIANTS
from edgecnn.runtime import bundled
from edgecnn.runtime.model_file import read_card, read_tflite_card

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed


@pytest.fixture()
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_documented_default_is_the_int8_file_and_its_card_says_it_passed():
    assert RUNTIME_DEFAULT == RUNTIME_INT8 and set(RUNTIME_VARIANTS) == {RUNTIME_INT8, RUNTIME_FP32}
    card = read_card(str(RUNTIME_INT8))
    assert card.precision == "int8" and card.quantization["input"]
    assert 0 <= card.metrics["drop_points"] <= card.metrics["max_drop_points"] == 1.0
    assert card.metrics["fp32_map50_95"] == pytest.approx(read_card(str(RUNTIME_FP32)).metrics["map50_95"])
    assert bundled.passes_gate(card) and bundled.passes_gate(read_card(str(RUNTIME_FP32)))


def test_a_compressed_card_without_a_drop_within_budget_never_passes():
    card = read_card(str(RUNTIME_INT8))
    assert not bundled.passes_gate(card.replace(metrics={**card.metrics, "drop_points": 1.2}))
    assert not bundled.passes_gate(card.replace(metrics={"map": 0.9}))
    assert not bundled.passes_gate(None)


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_the_faster_passing_file_is_chosen_logged_and_cached(cache_home, monkeypatch):
    measured = {RUNTIME_INT8.name: 2.0, RUNTIME_FP32.name: 1.0}  # pretend fp32 is faster on this device
    monkeypatch.setattr(bundled, "median_ms", lambda backend: measured[backend.path.rsplit("/", 1)[-1]])
    chosen, line = bundled.choose(RUNTIME_VARIANTS)
    assert chosen == str(RUNTIME_FP32)
    assert "shapes_detector.tflite (fp32 reference): 1.00 ms" in line and "shapes_detector-int8.tflite 2.00 ms" in line
    entry, = json.loads((cache_home / "edgecnn" / "bundled-choice.json").read_text()).values()
    assert entry["file"] == RUNTIME_FP32.name and entry["backend"] == "litert"
    # each file timed on every installed backend; on the device's preferred one it is named alone
    assert {name: ms for name, ms in entry["ms"].items() if " on " not in name} == measured

    measured.update({RUNTIME_INT8.name: 0.5})  # the cache answers; nothing is timed again
    chosen, line = bundled.choose(RUNTIME_VARIANTS)
    assert chosen == str(RUNTIME_FP32) and "chosen on this device earlier" in line
    assert bundled.choose(RUNTIME_VARIANTS, threads=1)[0] == str(RUNTIME_INT8)  # another key: timed again


def test_a_file_failing_its_gate_is_skipped_even_when_faster(cache_home, tmp_path, monkeypatch):
    data = RUNTIME_INT8.read_bytes()
    card = read_tflite_card(data)
    failing = tmp_path / "failing-int8.tflite"
    failing.write_bytes(embed_tflite(data, card.replace(metrics={**card.metrics, "drop_points": 3.0})))
    monkeypatch.setattr(bundled, "median_ms", lambda backend: 0.1 if "failing" in backend.path else 5.0)
    lines = []
    assert bundled.choose([failing, RUNTIME_FP32], log=lines.append)[0] == str(RUNTIME_FP32)
    assert "failing-int8.tflite skipped" in lines[0]
    with pytest.raises(FileNotFoundError, match="passed its accuracy gate"):
        bundled.choose([failing], log=lines.append)


def test_a_corrupt_or_unwritable_cache_only_means_timing_again(cache_home):
    (cache_home / "edgecnn").mkdir(parents=True)
    (cache_home / "edgecnn" / "bundled-choice.json").write_text("{not json")
    chosen, line = bundled.choose(RUNTIME_VARIANTS)
    assert chosen in {str(RUNTIME_INT8), str(RUNTIME_FP32)} and "median inference on this device" in line
    assert json.loads((cache_home / "edgecnn" / "bundled-choice.json").read_text())  # rewritten whole


@pytest.mark.slow  # about 4-10 s: in CI, left out of the inner loop
def test_run_without_a_model_logs_the_choice(cache_home):
    result = run_cli("run", "--source", "demo", "--max-frames", "3", "--json", "-",
                     env={"XDG_CACHE_HOME": str(cache_home)})
    assert result.returncode == 0, result.stderr
    assert "bundled model: shapes_detector" in result.stderr and "median inference on this device" in result.stderr
    assert len(result.stdout.splitlines()) == 3
