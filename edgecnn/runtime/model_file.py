"""Reading the model card out of a converted model file, without torch or onnx.

The card is stored as JSON under the key `edgecnn_card`:
- ONNX: in `metadata_props`, read through onnxruntime's model metadata;
- TFLite: in the flatbuffer's `metadata` list (a named buffer), read with the TFLite
  schema that ai-edge-litert ships (tflite-runtime has no schema: cards in .tflite
  files then need ai-edge-litert, or the model runs with explicit flags).
"""
from __future__ import annotations

import os
import struct
from typing import Optional

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError

CARD_KEY = "edgecnn_card"
MODEL_SUFFIXES = (".onnx", ".tflite")


def model_format(path: str) -> str:
    """'onnx' or 'tflite' from the file name; a clear error for anything else."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in MODEL_SUFFIXES:
        raise UserError(f"{path}: not a model file the runtime can run (expected .onnx or .tflite)")
    return suffix[1:]


def _tflite_metadata(data: bytes, key: str) -> Optional[bytes]:
    """The named metadata buffer of a TFLite flatbuffer, read with struct alone: for
    devices that have tflite-runtime (which ships no schema) instead of ai-edge-litert.
    Model fields used (schema.fbs): 4 buffers:[Buffer{data:[ubyte], offset, size}],
    6 metadata:[Metadata{name:string, buffer:uint}]."""
    def table_field(table: int, index: int) -> int:  # absolute position of a field, 0 if absent
        vtable = table - struct.unpack_from("<i", data, table)[0]
        vtable_size = struct.unpack_from("<H", data, vtable)[0]
        if 4 + 2 * index >= vtable_size:
            return 0
        offset = struct.unpack_from("<H", data, vtable + 4 + 2 * index)[0]
        return table + offset if offset else 0

    def vector(position: int):  # (element start, length) of the vector a field points to
        start = position + struct.unpack_from("<I", data, position)[0]
        return start + 4, struct.unpack_from("<I", data, start)[0]

    def tables(position: int):
        start, length = vector(position)
        return [start + 4 * i + struct.unpack_from("<I", data, start + 4 * i)[0] for i in range(length)]

    model = struct.unpack_from("<I", data, 0)[0]
    metadata_field, buffers_field = table_field(model, 6), table_field(model, 4)
    if not metadata_field or not buffers_field:
        return None
    for entry in tables(metadata_field):
        name_field = table_field(entry, 0)
        if not name_field:
            continue
        start, length = vector(name_field)
        if data[start:start + length].decode("utf-8", "replace") != key:
            continue
        buffer_field = table_field(entry, 1)
        index = struct.unpack_from("<I", data, buffer_field)[0] if buffer_field else 0
        buffer = tables(buffers_field)[index]
        data_field = table_field(buffer, 0)
        if data_field:
            start, length = vector(data_field)
            return bytes(data[start:start + length])
        offset_field, size_field = table_field(buffer, 1), table_field(buffer, 2)
        if offset_field and size_field:  # buffers stored after the flatbuffer (files > 2 GB)
            offset, size = (struct.unpack_from("<Q", data, f)[0] for f in (offset_field, size_field))
            return bytes(data[offset:offset + size])
        return None
    return None


def read_tflite_card(data: bytes) -> Optional[ModelCard]:
    """The card from a .tflite file's bytes, or None when it has none."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        try:
            text = _tflite_metadata(data, CARD_KEY)
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise UserError(f"corrupt TFLite file: {exc}") from None
        return None if text is None else ModelCard.from_json(text.decode("utf-8", "replace"))
    try:
        model = schema.Model.GetRootAs(data, 0)
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            if entry.Name() is not None and entry.Name().decode() == CARD_KEY:
                return ModelCard.from_json(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode())
    except (IndexError, ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise UserError(f"corrupt TFLite file: {exc}") from None
    return None


def read_onnx_card(metadata: dict) -> Optional[ModelCard]:
    """The card from an onnxruntime session's custom metadata map, or None."""
    text = metadata.get(CARD_KEY)
    return None if text is None else ModelCard.from_json(text)


def read_card(path: str) -> Optional[ModelCard]:
    """The card embedded in a .onnx or .tflite file (None when there is none)."""
    fmt = model_format(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such model file")
    if fmt == "tflite":
        with open(path, "rb") as handle:
            return read_tflite_card(handle.read())
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise UserError(f"{path}: cannot load ONNX model: {str(exc).splitlines()[0]}") from None
    return read_onnx_card(session.get_modelmeta().custom_metadata_map)
