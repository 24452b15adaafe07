"""Writes the model files the torch-free runtime tests use (tests/data/models/): the
bundled checkpoints exported to ONNX with their cards, and a tiny int8-I/O graph. The
files are committed, so the runtime tests run where only `edgecnn[runtime]` is
installed (a Raspberry Pi, CI's runtime-only venv); rerun this after a bundled
checkpoint changes:

    python tests/make_runtime_fixtures.py      (needs edgecnn[all])

tests/test_runtime_fixtures.py checks that the committed files still match what this
script makes from the current checkpoints.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

MODELS = Path(__file__).resolve().parent / "data" / "models"
# the card of int8_io.onnx: input scale 0.5 / zero point 3, outputs (1.0, 0) and (0.25, 1)
INT8_IO_CARD = dict(task="classify", labels=["a"], input_size=(4, 4), precision="int8",
                    quantization={"input": {"scale": 0.5, "zero_point": 3},
                                  "outputs": [{"scale": 1.0, "zero_point": 0}, {"scale": 0.25, "zero_point": 1}]})


def export_onnx(checkpoint: Path, out: Path) -> Path:
    """Checkpoint -> .onnx with its card in metadata_props."""
    import onnx
    import torch

    from converters.card_embed import embed_onnx
    from edgecnn.core.files import file_hash
    from edgecnn.core.task import get_task
    from edgecnn.training.checkpoint import load_model

    model, card, _ = load_model(checkpoint)
    card = card.replace(source_hash=card.source_hash or file_hash(checkpoint))
    height, width = card.input_size
    sample = torch.zeros(1, card.channels, height, width)
    with torch.no_grad():
        outputs = model(sample)
    count = len(outputs) if isinstance(outputs, (tuple, list)) else 1
    names = get_task(card.task).output_names(card, count)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: fast and exact here
        torch.onnx.export(model, (sample,), str(out), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=names)
    proto = onnx.load(str(out))
    embed_onnx(proto, card)
    proto.producer_version = ""  # the file depends on the checkpoint, not on the torch build
    onnx.save(proto, str(out))
    return out


def int8_io_onnx(out: Path) -> Path:
    """x: int8 (1, 3, 4, 4) -> float_out = float(x) and int8_out = x: shows exactly how
    the backend quantized the input and how it dequantizes an int8 output."""
    import onnx
    from onnx import TensorProto, helper

    from converters.card_embed import embed_onnx
    from edgecnn.core.card import ModelCard

    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["float_out"], to=TensorProto.FLOAT),
         helper.make_node("Identity", ["x"], ["int8_out"])],
        "int8_io", [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("float_out", TensorProto.FLOAT, [1, 3, 4, 4]),
         helper.make_tensor_value_info("int8_out", TensorProto.INT8, [1, 3, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # onnxruntime 1.31 rejects the IR version onnx 1.23 writes by default
    embed_onnx(model, ModelCard(**INT8_IO_CARD))
    onnx.save(model, str(out))
    return out


def main(out: Path = MODELS) -> None:
    from edgecnn.assets import DIGITS_CLASSIFIER, SHAPES_DETECTOR

    out.mkdir(parents=True, exist_ok=True)
    for written in (export_onnx(SHAPES_DETECTOR, out / "shapes_detector.onnx"),
                    export_onnx(DIGITS_CLASSIFIER, out / "digits.onnx"), int8_io_onnx(out / "int8_io.onnx")):
        print(f"wrote {written} ({written.stat().st_size} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else MODELS)
