"""A TFLite file's graph read from its flatbuffer with the standard library: the tensors
(type, shape, quantization), the first subgraph's inputs, outputs and operators, and the
signature's output order. For what needs the file itself rather than an interpreter:
engines that read TFLite without exposing its quantization or output order (OpenVINO),
the metadata on devices whose tflite-runtime ships no schema, and `edgecnn info`'s
precision. Field numbers are those of TFLite's schema.fbs:

    Model: 1 operator_codes, 2 subgraphs, 4 buffers, 6 metadata, 7 signature_defs
    OperatorCode: 0 deprecated_builtin_code (int8), 1 custom_code, 3 builtin_code (int32)
    SubGraph: 0 tensors, 1 inputs, 2 outputs, 3 operators
    Tensor: 0 shape, 1 type (TensorType), 3 name, 4 quantization
    QuantizationParameters: 2 scale [float], 3 zero_point [long]
    Operator: 0 opcode_index, 1 inputs, 2 outputs
    SignatureDef: 1 outputs [TensorMap{0 name, 1 tensor_index}]
    Metadata: 0 name, 1 buffer; Buffer: 0 data, 1 offset, 2 size
"""
from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from edgecnn.core.errors import UserError

# TensorType values (schema.fbs) of the types a model's tensors are read as here
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16",
                9: "int8", 10: "float64"}
DEQUANTIZE, QUANTIZE, CUSTOM = 6, 114, 32  # BuiltinOperator values (schema.fbs)
Quant = Optional[Tuple[float, int]]
CORRUPT = "corrupt or truncated TFLite file (its tables point past its end)"
_UNREADABLE = (struct.error, IndexError, ValueError, OverflowError)  # what reading nonsense raises here


class Flatbuffer:
    """Positions in a flatbuffer: tables, their fields, vectors and strings."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def root(self) -> int:
        return struct.unpack_from("<I", self.data, 0)[0]

    def field(self, table: int, index: int) -> int:
        """Absolute position of a table's field, 0 when the field is absent."""
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        vtable_size = struct.unpack_from("<H", self.data, vtable)[0]
        if 4 + 2 * index >= vtable_size:
            return 0
        offset = struct.unpack_from("<H", self.data, vtable + 4 + 2 * index)[0]
        return table + offset if offset else 0

    def vector(self, position: int) -> Tuple[int, int]:
        """(first element, length) of the vector a field points to."""
        start = position + struct.unpack_from("<I", self.data, position)[0]
        return start + 4, struct.unpack_from("<I", self.data, start)[0]

    def tables(self, table: int, index: int) -> List[int]:
        """The tables of a field that is a vector of tables ([] when absent)."""
        position = self.field(table, index)
        if not position:
            return []
        start, length = self.vector(position)
        return [start + 4 * i + struct.unpack_from("<I", self.data, start + 4 * i)[0] for i in range(length)]

    def scalars(self, table: int, index: int, code: str) -> List:
        position = self.field(table, index)
        if not position:
            return []
        start, length = self.vector(position)
        return list(struct.unpack_from(f"<{length}{code}", self.data, start))

    def scalar(self, table: int, index: int, code: str, default=0):
        position = self.field(table, index)
        return struct.unpack_from(f"<{code}", self.data, position)[0] if position else default

    def string(self, table: int, index: int) -> Optional[str]:
        position = self.field(table, index)
        if not position:
            return None
        start, length = self.vector(position)
        return self.data[start:start + length].decode("utf-8", "replace")

    def bytes_of(self, table: int, index: int) -> Optional[bytes]:
        position = self.field(table, index)
        if not position:
            return None
        start, length = self.vector(position)
        return bytes(self.data[start:start + length])


@dataclass
class Tensor:
    name: str
    type: str  # numpy dtype name, or 'type N' for a type not read here
    shape: Tuple[int, ...]
    quant: Quant  # (scale, zero point) of a per-tensor quantized tensor


@dataclass
class Operator:
    code: int  # BuiltinOperator value
    custom: Optional[str]  # a custom op's name
    inputs: List[int]
    outputs: List[int]


@dataclass
class TFLiteGraph:
    """The first subgraph of a TFLite file."""

    tensors: List[Tensor]
    inputs: List[int]
    outputs: List[int]
    operators: List[Operator]
    signature_outputs: Dict[str, int]  # the signature's output names -> tensor indices

    def outputs_in_model_order(self) -> List[int]:
        """Output tensors in the order the source model returned them: the signature's
        output_0, output_1, ... carry that order when present (converters from PyTorch
        name them so); else the subgraph's order."""
        keys = list(self.signature_outputs)
        if keys and all(k.startswith("output_") and k[7:].isdigit() for k in keys):
            ordered = [self.signature_outputs[k] for k in sorted(keys, key=lambda k: int(k[7:]))]
            if sorted(ordered) == sorted(self.outputs):
                return ordered
        return list(self.outputs)

    def op_counts(self) -> Dict[str, int]:
        """{operator name: count}; builtin names from the schema ai-edge-litert ships
        (a device without it shows their numbers)."""
        try:
            from ai_edge_litert import schema_py_generated as schema

            names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        except ImportError:
            names = {}
        return dict(Counter(op.custom if op.code == CUSTOM and op.custom else names.get(op.code, f"builtin {op.code}")
                            for op in self.operators))

    def dequantized_types(self) -> Counter:
        """The types of the tensors DEQUANTIZE ops read: float16 for weights stored in
        half precision (TFLite's float16 quantization), int8/uint8 for integer ones."""
        return Counter(self.tensors[op.inputs[0]].type for op in self.operators
                       if op.code == DEQUANTIZE and op.inputs and 0 <= op.inputs[0] < len(self.tensors))


def _quantization(buffer: Flatbuffer, tensor: int) -> Quant:
    position = buffer.field(tensor, 4)
    if not position:
        return None
    table = position + struct.unpack_from("<I", buffer.data, position)[0]
    scales, zero_points = buffer.scalars(table, 2, "f"), buffer.scalars(table, 3, "q")
    if len(scales) != 1 or not scales[0]:  # none, or per-channel (weights only)
        return None
    return float(scales[0]), int(zero_points[0]) if zero_points else 0


def read_graph(data: bytes) -> TFLiteGraph:
    """The first subgraph of a .tflite file's bytes; UserError for a file that is not one."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise UserError("not a TFLite model (no TFL3 identifier): corrupt or not a .tflite file")
    buffer = Flatbuffer(data)
    try:
        model = buffer.root()
        codes = [(max(buffer.scalar(c, 0, "b"), buffer.scalar(c, 3, "i")), buffer.string(c, 1))
                 for c in buffer.tables(model, 1)]
        subgraphs = buffer.tables(model, 2)
        if not subgraphs:
            raise UserError("the TFLite file has no subgraph")
        graph = subgraphs[0]
        tensors = []
        for table in buffer.tables(graph, 0):
            kind = buffer.scalar(table, 1, "b")
            tensors.append(Tensor(name=buffer.string(table, 3) or "", type=TENSOR_TYPES.get(kind, f"type {kind}"),
                                  shape=tuple(buffer.scalars(table, 0, "i")), quant=_quantization(buffer, table)))
        operators = []
        for table in buffer.tables(graph, 3):
            code, custom = codes[buffer.scalar(table, 0, "I")]
            operators.append(Operator(code, custom, buffer.scalars(table, 1, "i"), buffer.scalars(table, 2, "i")))
        signatures = buffer.tables(model, 7)
        signature_outputs = {}
        if len(signatures) == 1:
            signature_outputs = {buffer.string(entry, 0) or "": buffer.scalar(entry, 1, "I")
                                 for entry in buffer.tables(signatures[0], 1)}
        return TFLiteGraph(tensors, buffer.scalars(graph, 1, "i"), buffer.scalars(graph, 2, "i"), operators,
                           signature_outputs)
    except _UNREADABLE:
        raise UserError(CORRUPT) from None


def metadata_indices(data: bytes) -> Dict[str, int]:
    """{metadata name: buffer index} of a TFLite file (the card is under edgecnn_card)."""
    buffer = Flatbuffer(data)
    try:
        return {buffer.string(entry, 0) or "": buffer.scalar(entry, 1, "I")
                for entry in buffer.tables(buffer.root(), 6)}
    except _UNREADABLE:
        raise UserError(CORRUPT) from None


def buffer_spans(data: bytes) -> List[Tuple[int, int]]:
    """(start, end) in the file of each buffer's bytes, in buffer order; (0, 0) for an
    empty buffer. Buffers of files over 2 GB lie after the flatbuffer (offset, size)."""
    buffer = Flatbuffer(data)
    spans = []
    try:
        for table in buffer.tables(buffer.root(), 4):
            position = buffer.field(table, 0)
            if position:
                start, length = buffer.vector(position)
            else:
                offset, size = buffer.scalar(table, 1, "Q"), buffer.scalar(table, 2, "Q")
                start, length = (offset, size) if offset > 1 else (0, 0)  # offset 0 or 1: no data
            if start < 0 or start + length > len(data):
                raise ValueError("a buffer lies past the end of the file")
            spans.append((start, start + length))
    except _UNREADABLE:
        raise UserError(CORRUPT) from None
    return spans


def metadata_buffer(data: bytes, key: str) -> Optional[bytes]:
    """The named metadata buffer of a TFLite file (where edgecnn keeps its card), or None."""
    index = metadata_indices(data).get(key)
    if index is None:
        return None
    spans = buffer_spans(data)
    if index >= len(spans):
        raise UserError(f"corrupt TFLite file: metadata {key} names buffer {index} of {len(spans)}")
    start, end = spans[index]
    return bytes(data[start:end]) if end > start else None
