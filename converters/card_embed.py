"""Writing the model card into ONNX and TFLite files (the reader is
edgecnn.runtime.model_file, which needs neither torch nor onnx). The card written
records the digest of the file's weights (edgecnn.runtime.integrity), computed here
from the very bytes that are written, so a file is tied to its card from the start."""
from __future__ import annotations

from edgecnn.core.card import ModelCard
from edgecnn.runtime.integrity import onnx_weights_digest, tflite_weights_digest
from edgecnn.runtime.model_file import CARD_KEY


def embed_onnx(model_proto, card: ModelCard) -> None:
    """Set the card, with the digest of the proto's graph, in an onnx.ModelProto's
    metadata_props (replacing an older one). Save the proto after this, unchanged."""
    for prop in list(model_proto.metadata_props):
        if prop.key == CARD_KEY:
            model_proto.metadata_props.remove(prop)
    digest = onnx_weights_digest(model_proto.SerializeToString())
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.replace(weights_digest=digest).to_json()


def embed_tflite(data: bytes, card: ModelCard) -> bytes:
    """A copy of a .tflite flatbuffer with the card, and the digest of its weights, as a
    named metadata buffer. A card already there is replaced in its own buffer, so the
    other buffers keep their indices and bytes."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    kept = [m for m in (model.metadata or []) if m.name not in (CARD_KEY, CARD_KEY.encode())]
    old = [m.buffer for m in (model.metadata or []) if m.name in (CARD_KEY, CARD_KEY.encode())]
    if old:
        index = old[-1]
    else:
        model.buffers.append(schema.BufferT())
        index = len(model.buffers) - 1
    entry = schema.MetadataT()
    entry.name, entry.buffer = CARD_KEY, index
    model.metadata = kept + [entry]

    def packed(text: str) -> bytes:
        model.buffers[index].data = np.frombuffer(text.encode(), dtype=np.uint8)
        model.buffers[index].offset = model.buffers[index].size = 0
        builder = flatbuffers.Builder(len(data) + len(text) + 4096)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    # the digest leaves out the card's buffer: the file packed with the card as it will be
    # written, less the digest, has the digest of the final file
    digest = tflite_weights_digest(packed(card.replace(weights_digest=None).to_json()))
    return packed(card.replace(weights_digest=digest).to_json())
