"""Reading the model card out of a converted model file, without torch or onnx.

The card is stored as JSON under the key `edgecnn_card`:
- ONNX: in `metadata_props`, read through onnxruntime's model metadata;
- TFLite: in the flatbuffer's `metadata` list (a named buffer), read with
  edgecnn.runtime.tflite_wire (struct alone: tflite-runtime ships no schema).
"""
from __future__ import annotations

import os
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


def read_tflite_card(data: bytes) -> Optional[ModelCard]:
    """The card from a .tflite file's bytes, or None when it has none; UserError for a
    file whose tables or card cannot be read."""
    text = metadata_buffer(data, CARD_KEY)
    if text is None:
        return None
    try:
        return ModelCard.from_json(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError("corrupt TFLite file: its model card is not UTF-8 text") from None


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
