"""Model files for the runtime tests, made once per test process: the bundled
checkpoints exported to ONNX (torch.onnx.export + the card embedded), and tiny
hand-built ONNX graphs for the quantization paths."""
from __future__ import annotations

import functools
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
VIDEO = DATA / "tree.avi"
VIDEO_FRAMES = 68


@functools.lru_cache(maxsize=None)
def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="edgecnn-runtime-"))


def export_onnx(checkpoint: Path, out: Path) -> Path:
    """Checkpoint -> .onnx with its card in metadata_props."""
    import onnx
    import torch

    from converters.card_embed import embed_onnx
    from edgecnn.core.files import file_hash
    from edgecnn.training.checkpoint import load_model

    model, card, _ = load_model(checkpoint)
    card = card.replace(source_hash=card.source_hash or file_hash(checkpoint))
    height, width = card.input_size
    sample = torch.zeros(1, card.channels, height, width)
    names = None
    if card.task == "detect":
        from edgecnn.runtime.heads import head_of

        names = head_of(card).output_names(card)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: fast and exact here
        torch.onnx.export(model, (sample,), str(out), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=names)
    proto = onnx.load(str(out))
    embed_onnx(proto, card)
    onnx.save(proto, str(out))
    return out


@functools.lru_cache(maxsize=None)
def detector_onnx() -> Path:
    from edgecnn.assets import SHAPES_DETECTOR

    return export_onnx(SHAPES_DETECTOR, _workdir() / "shapes_detector.onnx")


@functools.lru_cache(maxsize=None)
def digits_onnx() -> Path:
    from edgecnn.assets import DIGITS_CLASSIFIER

    return export_onnx(DIGITS_CLASSIFIER, _workdir() / "digits.onnx")


def int8_io_onnx(out: Path, card=None) -> Path:
    """x: int8 (1, 3, 4, 4) -> float_out = float(x) and int8_out = x: shows exactly how
    the backend quantized the input and how it dequantizes an int8 output."""
    import onnx
    from onnx import TensorProto, helper

    from converters.card_embed import embed_onnx

    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["float_out"], to=TensorProto.FLOAT),
         helper.make_node("Identity", ["x"], ["int8_out"])],
        "int8_io", [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("float_out", TensorProto.FLOAT, [1, 3, 4, 4]),
         helper.make_tensor_value_info("int8_out", TensorProto.INT8, [1, 3, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # onnxruntime 1.31 rejects the IR version onnx 1.23 writes by default
    if card is not None:
        embed_onnx(model, card)
    onnx.save(model, str(out))
    return out
