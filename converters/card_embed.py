"""Writing the model card into ONNX and TFLite files (the reader is
edgecnn.runtime.model_file, which needs neither torch nor onnx)."""
from __future__ import annotations

from edgecnn.core.card import ModelCard
from edgecnn.runtime.model_file import CARD_KEY


def embed_onnx(model_proto, card: ModelCard) -> None:
    """Set the card in an onnx.ModelProto's metadata_props (replacing an older one)."""
    for prop in list(model_proto.metadata_props):
        if prop.key == CARD_KEY:
            model_proto.metadata_props.remove(prop)
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json()


def embed_tflite(data: bytes, card: ModelCard) -> bytes:
    """A copy of a .tflite flatbuffer with the card as a named metadata buffer."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    model.metadata = [m for m in (model.metadata or []) if m.name not in (CARD_KEY, CARD_KEY.encode())]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(card.to_json().encode(), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = CARD_KEY, len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
