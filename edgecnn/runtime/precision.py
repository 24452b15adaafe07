"""The numeric precision a model file was saved at, read from the file when it carries no
card: `int8` (integer-quantized tensors or quantize/dequantize ops on integers), `fp16`
(weights stored in half precision: TFLite's float16 files, as MediaPipe and Ultralytics
ship them, dequantize them to float32 with DEQUANTIZE ops; ONNX half files hold float16
initializers or inputs) or `fp32`. A DEQUANTIZE op alone does not make a file int8: what
it reads decides."""
from __future__ import annotations

from edgecnn.runtime.model_file import model_format

INTEGER_TYPES = ("int8", "uint8", "int16")
ONNX_INT8, ONNX_FLOAT16 = 3, 10  # TensorProto.DataType
ONNX_QUANTIZED_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                      "MatMulInteger", "DynamicQuantizeLinear")


def tflite_precision(data: bytes) -> str:
    from edgecnn.runtime.tflite_wire import QUANTIZE, read_graph

    graph = read_graph(data)
    dequantized = graph.dequantized_types()
    quantized_tensors = any(t.type in INTEGER_TYPES and t.quant is not None for t in graph.tensors)
    if quantized_tensors or any(op.code == QUANTIZE for op in graph.operators) or any(
            kind in INTEGER_TYPES for kind in dequantized):
        return "int8"
    if dequantized.get("float16") or any(t.type == "float16" for t in graph.tensors):
        return "fp16"
    return "fp32"


def onnx_precision(data: bytes) -> str:
    from edgecnn.runtime.onnx_wire import element_types, onnx_op_counts

    ops = onnx_op_counts(data)
    types = element_types(data)
    io_types = set(types["inputs"].values()) | set(types["outputs"].values())
    # a uint8 input alone is an image taken as pixels (cast to float inside), not quantization
    if any(op in ops for op in ONNX_QUANTIZED_OPS) or ONNX_INT8 in io_types:
        return "int8"
    if ONNX_FLOAT16 in io_types or types["initializers"].get(ONNX_FLOAT16):
        return "fp16"
    return "fp32"


def file_precision(path: str) -> str:
    """'int8' | 'fp16' | 'fp32' of a .tflite or .onnx file, from its graph."""
    fmt = model_format(path)
    with open(path, "rb") as handle:
        data = handle.read()
    return tflite_precision(data) if fmt == "tflite" else onnx_precision(data)
