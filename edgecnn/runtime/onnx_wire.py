"""The operator histogram, metadata and integer I/O quantization of an ONNX file, read
from its protobuf wire format with the standard library: the device runtime has
onnxruntime, which exposes no graph, and not the `onnx` package (about 50 MB with its
protobuf stack), which `edgecnn info` would otherwise need for one count; OpenVINO reads
ONNX files but drops their metadata_props, where the card lives. Fields used
(onnx.proto): ModelProto.graph = 7, ModelProto.metadata_props = 14
(StringStringEntryProto: key = 1, value = 2), GraphProto.node = 1, NodeProto.op_type = 4,
NodeProto.domain = 7, GraphProto.initializer = 5 (TensorProto.data_type = 2),
GraphProto.input/output = 11/12 (ValueInfoProto: name = 1, type = 2; TypeProto.tensor_type
= 1; elem_type = 1).
"""
from __future__ import annotations

import struct
from collections import Counter
from typing import Dict, Iterator, Optional, Tuple

from edgecnn.core.errors import UserError

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
GRAPH = 7  # ModelProto.graph


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
    values are bytes (memoryviews when `data` is one: no copies), the others ints.
    ValueError for bytes that are not a message."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, position = _varint(data, position)
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if position + size > len(data):
                raise ValueError("truncated field")
            value, position = int.from_bytes(data[position:position + size], "little"), position + size
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


def metadata_props(data: bytes) -> Dict[str, str]:
    """The model's metadata_props as {key: value}, what onnxruntime's custom metadata map gives."""
    props: Dict[str, str] = {}
    try:
        for number, wire, entry in fields(data):
            if number != 14 or wire != _BYTES:
                continue
            key = value = ""
            for field, kind, item in fields(entry):
                if kind == _BYTES and field in (1, 2):
                    text = item.decode("utf-8", "replace")
                    key, value = (text, value) if field == 1 else (key, text)
            props[key] = value
    except ValueError as exc:
        raise UserError(f"corrupt ONNX file: {exc}") from None
    return props


def element_types(data: bytes) -> Dict[str, Dict]:
    """TensorProto data types (1 float, 2 uint8, 3 int8, 10 float16, ...) of the graph's
    {"inputs": {name: type}, "outputs": {name: type}, "initializers": {type: count}}."""
    found: Dict[str, Dict] = {"inputs": {}, "outputs": {}, "initializers": Counter()}
    try:
        graph = next((value for number, wire, value in fields(data) if number == 7 and wire == _BYTES), b"")
        for number, wire, value in fields(graph):
            if wire != _BYTES:
                continue
            if number == 5:
                kind = next((item for field, form, item in fields(value) if field == 2 and form == _VARINT), 0)
                found["initializers"][kind] += 1
            elif number in (11, 12):
                name, kind = "", 0
                for field, form, item in fields(value):
                    if field == 1 and form == _BYTES:
                        name = item.decode("utf-8", "replace")
                    elif field == 2 and form == _BYTES:
                        tensor = next((t for f, w, t in fields(item) if f == 1 and w == _BYTES), b"")
                        kind = next((t for f, w, t in fields(tensor) if f == 1 and w == _VARINT), 0)
                found["inputs" if number == 11 else "outputs"][name] = kind
    except ValueError as exc:
        raise UserError(f"corrupt ONNX file: {exc}") from None
    found["initializers"] = dict(found["initializers"])
    return found


def _tensor_scalar(tensor: bytes):
    """(name, first value) of a TensorProto initializer holding a scale or zero point:
    fields 2 data_type, 4 float_data, 5 int32_data, 8 name, 9 raw_data."""
    name, data_type, floats, ints, raw = "", 0, None, None, None
    for number, wire, value in fields(tensor):
        if number == 8 and wire == _BYTES:
            name = value.decode("utf-8", "replace")
        elif number == 2 and wire == _VARINT:
            data_type = value
        elif number == 4:
            floats = struct.unpack_from("<f", value)[0] if wire == _BYTES and len(value) >= 4 else (
                struct.unpack("<f", value.to_bytes(4, "little"))[0] if wire == _FIXED32 else None)
        elif number == 5:
            ints = _varint(value, 0)[0] if wire == _BYTES and value else (value if wire == _VARINT else None)
        elif number == 9 and wire == _BYTES:
            raw = value
    if raw:
        formats = {1: "<f", 2: "<B", 3: "<b", 6: "<i"}  # FLOAT, UINT8, INT8, INT32
        if data_type in formats:
            return name, struct.unpack_from(formats[data_type], raw)[0]
        return name, None
    if floats is not None:
        return name, floats
    if ints is not None:
        return name, ints - 256 if data_type == 3 and ints > 127 else ints
    return name, 0 if data_type in (2, 3) else None  # an empty zero point tensor: zero


def _node(message) -> Dict:
    """A NodeProto's {"input": [...], "output": [...], "op": op_type} (fields 1, 2, 4)."""
    node: Dict = {"input": [], "output": [], "op": ""}
    for field, kind, item in fields(message):
        if kind == _BYTES and field in (1, 2):
            node["input" if field == 1 else "output"].append(item.decode("utf-8", "replace"))
        elif kind == _BYTES and field == 4:
            node["op"] = item.decode("utf-8", "replace")
    return node


def io_quantization(data: bytes) -> Tuple[Dict[str, Tuple[float, int]], Dict[str, Tuple[float, int]]]:
    """Scale and zero point of integer graph inputs read by a DequantizeLinear and integer
    graph outputs written by a QuantizeLinear, from the file's own initializers:
    ({input name: (scale, zero point)}, {output name: (scale, zero point)}).
    Fields: GraphProto 1 node, 5 initializer, 11 input, 12 output; NodeProto 1 input,
    2 output, 4 op_type; ValueInfoProto 1 name."""
    try:
        graph = next(value for number, wire, value in fields(data) if number == 7 and wire == _BYTES)
        nodes, constants, inputs, outputs = [], {}, set(), set()
        for number, wire, value in fields(graph):
            if wire != _BYTES:
                continue
            if number == 1:
                nodes.append(_node(value))
            elif number == 5:
                name, scalar = _tensor_scalar(value)
                constants[name] = scalar
            elif number in (11, 12):
                name = next((item.decode("utf-8", "replace") for field, kind, item in fields(value)
                             if field == 1 and kind == _BYTES), "")
                (inputs if number == 11 else outputs).add(name)
    except (StopIteration, ValueError, struct.error):  # no graph, or not a message: nothing read
        return {}, {}

    def params(node):
        scale = constants.get(node["input"][1]) if len(node["input"]) > 1 else None
        zero = constants.get(node["input"][2], 0) if len(node["input"]) > 2 else 0
        return None if scale is None else (float(scale), int(zero or 0))

    found_in = {n["input"][0]: params(n) for n in nodes if n["op"] == "DequantizeLinear" and n["input"]
                and n["input"][0] in inputs}
    found_out = {n["output"][0]: params(n) for n in nodes if n["op"] == "QuantizeLinear" and n["output"]
                 and n["output"][0] in outputs}
    return ({k: v for k, v in found_in.items() if v}, {k: v for k, v in found_out.items() if v})


# Which input of each integer operator is its weight: what onnxruntime's int8 matrix
# kernels multiply with the activations.
WEIGHT_INPUTS = {"DequantizeLinear": 0, "QLinearConv": 3, "QLinearMatMul": 3, "ConvInteger": 1, "MatMulInteger": 1}


def int8_weight_range(data: bytes) -> Optional[Tuple[int, int]]:
    """(smallest, largest) value of the int8 weights (initializers in a WEIGHT_INPUTS
    position), or None where there are none or one is not stored in the file itself
    (external data): whether onnxruntime's fast u8s8 kernel can saturate on them.
    TensorProto fields: 2 data_type (3 int8), 5 int32_data, 8 name, 9 raw_data,
    14 data_location (1 external)."""
    import numpy as np

    try:
        graph = next(value for number, wire, value in fields(data) if number == 7 and wire == _BYTES)
        weights, tensors = set(), []
        for number, wire, value in fields(graph):
            if wire != _BYTES:
                continue
            if number == 1:
                node = _node(value)
                position = WEIGHT_INPUTS.get(node["op"])
                if position is not None and position < len(node["input"]):
                    weights.add(node["input"][position])
            elif number == 5:
                tensors.append(value)
        low = high = None
        for tensor in tensors:
            name, data_type, raw, ints, external = "", 0, None, [], False
            for field, kind, item in fields(tensor):
                if field == 8 and kind == _BYTES:
                    name = item.decode("utf-8", "replace")
                elif field == 2 and kind == _VARINT:
                    data_type = item
                elif field == 9 and kind == _BYTES:
                    raw = item
                elif field == 5 and kind == _BYTES:  # packed
                    position = 0
                    while position < len(item):
                        number, position = _varint(item, position)
                        ints.append(number)
                elif field == 5 and kind == _VARINT:
                    ints.append(item)
                elif field == 14 and kind == _VARINT:
                    external = item == 1
            if data_type != 3 or name not in weights:
                continue
            if external:
                return None
            values = np.frombuffer(bytes(raw), np.int8) if raw is not None else \
                np.array([v - (1 << 64) if v >= 1 << 63 else v for v in ints], np.int64)
            if values.size:
                low = int(values.min()) if low is None else min(low, int(values.min()))
                high = int(values.max()) if high is None else max(high, int(values.max()))
    except (StopIteration, ValueError):
        return None
    return None if low is None else (low, high)
