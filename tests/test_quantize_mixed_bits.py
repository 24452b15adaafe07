"""`edgecnn quantize FILE.onnx --weight-bits 7 --mixed`: when 7-bit weights throughout miss
the budget, the most sensitive convolutions get 8-bit weights (from a file quantized
alike in 8 bits) and everything else of the 7-bit file stays as it was."""
import json

import numpy as np
import pytest

from conftest import run_cli
from runtime_fixtures import detector_onnx


def magnitudes(path) -> dict:
    """Per weighted node, the largest |value| of its int8 weight."""
    import onnx
    from onnx import numpy_helper

    from converters.quantize_onnx import weight_initializers

    model = onnx.load(str(path))
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {node: max(int(np.abs(values[n].astype(np.int64)).max()) for n in names if values[n].dtype == np.int8)
            for node, names in weight_initializers(model).items()}


@pytest.mark.slow(10)  # two static quantizations of the detector
def test_widen_takes_the_named_nodes_weights_and_biases_from_the_8_bit_file(tmp_path):
    import edgecnn
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    from converters.quantize_onnx import prepare, quantize_file, widen
    from edgecnn.data.detection import load_shapes_detection

    card = edgecnn.load(detector_onnx(), backend="onnxruntime", log=None).card
    images = load_shapes_detection("train", count=4).images
    prepared = str(tmp_path / "prepared.onnx")
    prepare(detector_onnx(), prepared)
    for bits in (7, 8):
        quantize_file(prepared, str(tmp_path / f"{bits}.onnx"), card, images, True, [], bits)
    seven, eight = magnitudes(tmp_path / "7.onnx"), magnitudes(tmp_path / "8.onnx")
    chosen = [name for name in eight if eight[name] > 64][:3]
    widen(str(tmp_path / "7.onnx"), str(tmp_path / "8.onnx"), chosen, str(tmp_path / "mixed.onnx"))
    mixed = magnitudes(tmp_path / "mixed.onnx")
    assert {name: mixed[name] for name in chosen} == {name: eight[name] for name in chosen}
    assert {name: v for name, v in mixed.items() if name not in chosen} == \
        {name: v for name, v in seven.items() if name not in chosen}
    assert max(v for name, v in mixed.items() if name not in chosen) <= 64

    # the activations' ranges are the 7-bit file's (the same in both): only weights and biases differ
    def tensors(path):
        return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}

    narrow, result = tensors(tmp_path / "7.onnx"), tensors(tmp_path / "mixed.onnx")
    changed = {name for name in narrow if not np.array_equal(narrow[name], result[name])}
    from converters.quantize_onnx import weight_initializers

    per_node = weight_initializers(onnx.load(str(tmp_path / "7.onnx")))
    assert changed and changed <= {name for node in chosen for name in per_node[node]}
    blob = np.random.default_rng(0).random((1, 3, 192, 192), np.float32)
    outputs = [onnxruntime.InferenceSession(str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"])
               .run(None, {"input": blob})[0] for name in ("8", "mixed")]
    assert outputs[0].shape == outputs[1].shape and np.isfinite(outputs[1]).all()
    with pytest.raises(ValueError, match="no quantized weights for node"):
        widen(str(tmp_path / "7.onnx"), str(tmp_path / "8.onnx"), ["no-such-node"], str(tmp_path / "x.onnx"))


@pytest.mark.slow(30)  # seven static quantizations and six evaluations of 80 scenes
def test_mixed_7_bit_weights_give_the_most_sensitive_convolutions_8_bits(tmp_path):
    # a budget nothing meets, so every group is tried; --force writes the last
    # 80 held-out scenes instead of the 300 of `--data shapes`: six evaluations, the ranking among them
    from edgecnn.data.detection import load_shapes_detection, write_yolo

    for split, count in (("train", 16), ("val", 80)):
        write_yolo(load_shapes_detection(split, count=count), str(tmp_path / "scenes"), split)
    result = run_cli("quantize", detector_onnx(), "--data", tmp_path / "scenes", "--calib-images", "16", "--weight-bits", "7",
                     "--mixed", "--max-drop", "-50", "--force", "--out", tmp_path / "int8.onnx", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["weight_bits"] == 7 and summary["float_nodes"] == []
    assert "with 8-bit weights" in result.stderr and not summary["gate"]["passed"]
    wide = summary["eight_bit_nodes"]
    assert len(wide) == 16 and wide[:10] == [name for name, _ in summary["sensitivity"]]
    found = magnitudes(tmp_path / "int8.onnx")
    assert all(found[name] <= 64 for name in found if name not in wide)
    assert all(found[name] > 64 for name in wide)  # per-channel 8-bit scales reach 127
