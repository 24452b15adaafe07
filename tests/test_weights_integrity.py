"""The card is tied to the weights: a file whose weights were changed after conversion is
refused at load (one line, exit 2, naming the file) unless --no-verify / verify=False;
`edgecnn info` says match, mismatch or not recorded; the bundled files and the test
models record their digest."""
import json
import shutil

import pytest

import edgecnn
from conftest import assert_one_line_error, run_cli, run_cli_batch
from edgecnn.assets import RUNTIME_FP32, RUNTIME_INT8
from edgecnn.core.errors import UserError
from edgecnn.runtime.integrity import MATCH, MISMATCH, NOT_RECORDED, check_weights, weights_digest
from edgecnn.runtime.model_file import CARD_KEY, read_card, read_tflite_card
from edgecnn.runtime.onnx_wire import GRAPH, fields
from edgecnn.runtime.tflite_wire import buffer_spans, metadata_indices
from runtime_fixtures import MODELS

pytestmark = pytest.mark.runtime  # torch-free: also run where only edgecnn[runtime] is installed

FLIPPED = 300


def largest_tflite_weights(data: bytes):
    """(start, end) of the largest buffer that is not the card."""
    card = metadata_indices(data)[CARD_KEY]
    spans = [span for index, span in enumerate(buffer_spans(data)) if index != card]
    return max(spans, key=lambda span: span[1] - span[0])


def largest_onnx_initializer(data: bytes):
    """(start, end) of the raw data of the largest initializer, found in the file's bytes."""
    graph = next(value for number, wire, value in fields(data) if number == GRAPH and wire == 2)
    raws = [value for number, wire, tensor in fields(graph) if number == 5
            for field, kind, value in fields(tensor) if field == 9 and kind == 2]
    raw = max(raws, key=len)
    start = data.find(raw)
    return start, start + len(raw)


def flipped(source, out, span_of):
    """A copy of `source` with FLIPPED bytes of its weights inverted, spread over its largest tensor."""
    data = bytearray(source.read_bytes())
    start, end = span_of(bytes(data))
    for k in range(FLIPPED):
        data[start + k * (end - start) // FLIPPED] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def unrecorded(source, out):
    """A copy of `source` whose card has no digest, as cards were written before it existed:
    the key renamed in place (same length, so nothing else in the file moves)."""
    data = source.read_bytes()
    assert data.count(b'"weights_digest"') == 1
    out.write_bytes(data.replace(b'"weights_digest"', b'"weights_digesx"'))
    return out


@pytest.fixture
def tampered(tmp_path):
    return {"tflite": flipped(RUNTIME_FP32, tmp_path / "flipped.tflite", largest_tflite_weights),
            "onnx": flipped(MODELS / "digits.onnx", tmp_path / "flipped.onnx", largest_onnx_initializer)}


@pytest.mark.parametrize("path", [RUNTIME_FP32, RUNTIME_INT8, MODELS / "shapes_detector.onnx", MODELS / "digits.onnx",
                                  MODELS / "int8_io.onnx"])
def test_bundled_and_test_models_record_the_digest_of_their_weights(path):
    card = read_card(str(path))
    assert card.weights_digest == weights_digest(path.read_bytes(), path.suffix[1:])
    assert check_weights(str(path), card).status == MATCH


def test_a_file_with_flipped_weights_is_refused_naming_it(tampered):
    results = run_cli_batch(*[("run", str(path), "--source", "demo", "--max-frames", "2", "--json", "-")
                              for path in tampered.values()])
    for path, result in zip(tampered.values(), results):
        assert_one_line_error(result, contains=str(path))
        assert "do not match the digest in its model card" in result.stderr and "--no-verify" in result.stderr
        assert result.stdout == ""
    for path in tampered.values():
        with pytest.raises(UserError, match="do not match"):
            edgecnn.load(str(path))


def test_no_verify_runs_it_anyway(tampered):
    result = run_cli("run", tampered["tflite"], "--no-verify", "--source", "demo", "--max-frames", "2", "--json", "-")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    model = edgecnn.load(str(tampered["onnx"]), verify=False)
    assert model.card.weights_digest != weights_digest(tampered["onnx"].read_bytes(), "onnx")


def test_only_the_weights_count_a_new_card_on_the_same_weights_still_matches(tmp_path):
    """The digest leaves out the card's own buffer: what the runtime checks is the weights."""
    data = RUNTIME_INT8.read_bytes()
    card_buffer = buffer_spans(data)[metadata_indices(data)[CARD_KEY]]
    assert weights_digest(data, "tflite") == read_tflite_card(data).weights_digest
    start, end = card_buffer
    spaced = data[:start] + data[start:end].replace(b'"task"', b'"task" ')[:end - start] + data[end:]
    assert weights_digest(spaced, "tflite") == weights_digest(data, "tflite")


def test_info_shows_match_mismatch_and_not_recorded(tampered, tmp_path):
    old = unrecorded(RUNTIME_INT8, tmp_path / "old-card.tflite")
    old_onnx = unrecorded(MODELS / "digits.onnx", tmp_path / "old-card.onnx")
    assert edgecnn.load(str(old)).card.weights_digest is None  # an old card loads as before
    paths = {MATCH: RUNTIME_INT8, MISMATCH: tampered["tflite"], f"{MISMATCH} onnx": tampered["onnx"],
             NOT_RECORDED: old, f"{NOT_RECORDED} onnx": old_onnx}
    texts = run_cli_batch(*[("info", path) for path in paths.values()])
    as_json = run_cli_batch(*[("info", path, "--json") for path in paths.values()])
    expected = {MATCH: "weights       match the digest in the card",
                MISMATCH: "weights       DO NOT match the digest in the card",
                NOT_RECORDED: "weights       digest not recorded in the card"}
    for (name, path), text, data in zip(paths.items(), texts, as_json):
        status = name.split(" onnx")[0]
        assert text.returncode == 0 and data.returncode == 0, text.stderr + data.stderr
        assert expected[status] in text.stdout
        weights = json.loads(data.stdout)["weights"]
        assert weights["digest"] == status
        assert weights["computed"] == weights_digest(path.read_bytes(), path.suffix[1:])
    assert "(for the weights converted, not these)" in texts[1].stdout  # the card's accuracy is not these weights'


def test_the_bundled_detector_still_runs_with_its_digest_checked(tmp_path):
    copy = tmp_path / "shapes.tflite"
    shutil.copy(RUNTIME_FP32, copy)
    result = run_cli("run", copy, "--source", "demo", "--max-frames", "5", "--json", "-")
    assert result.returncode == 0, result.stderr
    frames = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(frames) == 5 and all(frame["detections"] for frame in frames)


def test_a_reload_in_one_process_hashes_again_only_a_file_that_changed(tmp_path, monkeypatch):
    import edgecnn.runtime.integrity as integrity

    path = tmp_path / "model.tflite"
    shutil.copy(RUNTIME_FP32, path)
    hashed = []
    real = integrity.weights_digest
    monkeypatch.setattr(integrity, "weights_digest", lambda data, fmt: hashed.append(len(data)) or real(data, fmt))
    edgecnn.load(str(path), log=None)
    edgecnn.load(str(path), log=None)
    assert len(hashed) == 1  # the same file, unchanged: verified once
    data = bytearray(path.read_bytes())
    start, end = largest_tflite_weights(bytes(data))
    with open(path, "r+b") as handle:  # in place: the same inode and size, a new change time
        handle.seek(start + (end - start) // 2)
        handle.write(bytes(b ^ 0xFF for b in data[start + (end - start) // 2:][:64]))
    with pytest.raises(UserError, match="its weights do not match the digest in its model card"):
        edgecnn.load(str(path), log=None)
    assert len(hashed) == 2
