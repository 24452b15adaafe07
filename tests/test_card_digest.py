"""The converters write the weights digest into the card they embed (converters/card_embed.py,
used by convert, quantize and the bundle script), computed from the bytes written, and
rewriting a card keeps the weights byte for byte. Needs onnx and ai-edge-litert's
schema (the convert extra), so not marked runtime."""
import numpy as np
import pytest

from converters.card_embed import embed_onnx, embed_tflite
from converters.convert import rewrite_card
from edgecnn.assets import RUNTIME_INT8
from edgecnn.core.card import ModelCard
from edgecnn.runtime.integrity import MATCH, MISMATCH, NOT_RECORDED, check_weights, weights_digest
from edgecnn.runtime.model_file import CARD_KEY, read_card, read_tflite_card
from edgecnn.runtime.tflite_wire import buffer_spans, metadata_indices
from runtime_fixtures import MODELS

CARD = ModelCard(task="classify", labels=["a", "b"], input_size=(4, 4))


def weights_of(data: bytes) -> list:
    card = metadata_indices(data).get(CARD_KEY)
    return [data[start:end] for index, (start, end) in enumerate(buffer_spans(data)) if index != card]


def tiny_onnx(scale: float):
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.full((1, 3, 4, 4), scale, np.float32), "w")
    graph = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_an_onnx_card_records_the_digest_of_the_graph_written(tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    model = tiny_onnx(2.0)
    embed_onnx(model, CARD)
    onnx.save(model, str(path))
    card = read_card(str(path))
    assert card.weights_digest == weights_digest(path.read_bytes(), "onnx") and check_weights(str(path), card).status \
        == MATCH
    other = tiny_onnx(3.0)  # other weights under the same card: caught
    other.metadata_props.extend(model.metadata_props)
    onnx.save(other, str(path))
    assert check_weights(str(path), read_card(str(path))).status == MISMATCH
    model.metadata_props.clear()
    unmarked = tmp_path / "plain.onnx"
    onnx.save(model, str(unmarked))
    assert read_card(str(unmarked)) is None


def test_a_tflite_card_is_embedded_with_its_digest_and_the_weights_keep_their_bytes():
    source = (MODELS / "float16_conv.tflite").read_bytes()  # written without a card
    first = embed_tflite(source, CARD)
    assert read_tflite_card(first).weights_digest == weights_digest(first, "tflite")
    assert weights_of(first)[:len(weights_of(source))] == weights_of(source)
    again = embed_tflite(first, CARD.replace(labels=["c", "d"]))  # the card replaced in its own buffer
    assert len(buffer_spans(again)) == len(buffer_spans(first)) and weights_of(again) == weights_of(first)
    assert read_tflite_card(again).labels == ["c", "d"]
    assert read_tflite_card(again).weights_digest == read_tflite_card(first).weights_digest


@pytest.mark.parametrize("source", [RUNTIME_INT8, MODELS / "digits.onnx"])
def test_the_card_rewritten_after_measuring_accuracy_keeps_a_matching_digest(source, tmp_path):
    """`edgecnn convert` and the bundle script write the card again once accuracy is
    measured: through the same embedding, so the digest is right after it too."""
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes())
    card = read_card(str(path)).replace(metrics={"top1": 0.5}, weights_digest=None)
    rewrite_card(str(path), path.suffix[1:], card)
    written = read_card(str(path))
    assert written.metrics == {"top1": 0.5} and check_weights(str(path), written).status == MATCH
    stale = path.read_bytes().replace(b'"weights_digest"', b'"weights_digesx"')
    path.write_bytes(stale)
    assert check_weights(str(path), read_card(str(path))).status == NOT_RECORDED
