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
from edgecnn.runtime.tflite_wire import metadata_buffer

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
    devices that have tflite-runtime (which ships no schema) instead of ai-edge-litert."""
    return metadata_buffer(data, key)


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
