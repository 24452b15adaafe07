"""The operator histogram of an ONNX file, read from its protobuf wire format with the
standard library: the device runtime has onnxruntime, which exposes no graph, and not
the `onnx` package (about 50 MB with its protobuf stack), which `edgecnn info` would
otherwise need for one count. Fields used (onnx.proto): ModelProto.graph = 7,
GraphProto.node = 1, NodeProto.op_type = 4, NodeProto.domain = 7.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, Iterator, Tuple

from edgecnn.core.errors import UserError

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(data: bytes, position: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(data: bytes) -> Iterator[Tuple[int, int, object]]:
    """(field number, wire type, value) of each field of one message; length-delimited
    values are bytes, the others ints."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, position = _varint(data, position)
        elif wire == _FIXED64:
            value, position = int.from_bytes(data[position:position + 8], "little"), position + 8
        elif wire == _FIXED32:
            value, position = int.from_bytes(data[position:position + 4], "little"), position + 4
        elif wire == _BYTES:
            length, position = _varint(data, position)
            value = data[position:position + length]
            if len(value) != length:
                raise ValueError("truncated field")
            position += length
        else:
            raise ValueError(f"unknown wire type {wire}")
        yield number, wire, value


def onnx_op_counts(data: bytes) -> Dict[str, int]:
    """{op_type: count} over the main graph's nodes (custom domains as 'domain.Op')."""
    counts: Counter = Counter()
    try:
        graphs = [value for number, wire, value in fields(data) if number == 7 and wire == _BYTES]
        if not graphs:
            raise ValueError("no graph")
        for number, wire, node in fields(graphs[0]):
            if number != 1 or wire != _BYTES:
                continue
            op_type = domain = ""
            for field, kind, value in fields(node):
                if field == 4 and kind == _BYTES:
                    op_type = value.decode("utf-8", "replace")
                elif field == 7 and kind == _BYTES:
                    domain = value.decode("utf-8", "replace")
            counts[f"{domain}.{op_type}" if domain and domain != "ai.onnx" else op_type] += 1
    except ValueError as exc:
        raise UserError(f"corrupt ONNX file: {exc}") from None
    return dict(counts)
