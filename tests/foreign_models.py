"""Small model files in other toolkits' output layouts, generated for the tests: their
outputs are fixed tables (plus 0 x the input's mean, so the input is really consumed),
which makes every decode exactly predictable.

- `tflite_model`: a TFLite flatbuffer written with the schema ai-edge-litert ships (no
  torch, no TensorFlow), optionally ending in the real TFLite_Detection_PostProcess op;
  `append_metadata` adds the zip Ultralytics appends to its TFLite files.
- `onnx_model`: an ONNX file written with the onnx helper API (needs the onnx package).
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np


# ---- TFLite


def _tflite_builder():
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    return flatbuffers, schema


class _Graph:
    def __init__(self, schema) -> None:
        self.schema = schema
        self.buffers = [schema.BufferT()]  # buffer 0: empty, by convention
        self.tensors: List = []
        self.operators: List = []
        self.codes: List = []

    def tensor(self, shape, dtype=None, data: Optional[np.ndarray] = None, name: str = "", quant=None) -> int:
        s = self.schema
        t = s.TensorT()
        t.shape = list(shape)
        t.type = s.TensorType.FLOAT32 if dtype is None else dtype
        t.name = name or f"t{len(self.tensors)}"
        t.buffer = 0
        if data is not None:
            buffer = s.BufferT()
            buffer.data = list(np.ascontiguousarray(data).tobytes())
            self.buffers.append(buffer)
            t.buffer = len(self.buffers) - 1
        if quant is not None:
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint = [float(quant[0])], [int(quant[1])]
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, builtin: int, inputs, outputs, options_type=0, options=None, custom: str = "",
           custom_options: bytes = b"") -> None:
        s = self.schema
        key = (builtin, custom)
        if key not in [(c.builtinCode, c.customCode or "") for c in self.codes]:
            code = s.OperatorCodeT()
            code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
            code.customCode = custom or None
            self.codes.append(code)
        op = s.OperatorT()
        op.opcodeIndex = [(c.builtinCode, c.customCode or "") for c in self.codes].index(key)
        op.inputs, op.outputs = list(inputs), list(outputs)
        if options is not None:
            op.builtinOptionsType, op.builtinOptions = options_type, options
        if custom_options:
            op.customOptions = list(custom_options)
            op.customOptionsFormat = s.CustomOptionsFormat.FLEXBUFFERS
        self.operators.append(op)

    def constant_plus_input(self, image: int, table: np.ndarray) -> int:
        """A tensor equal to `table` + 0 x mean(image): the image feeds it."""
        s = self.schema
        axes = self.tensor([3], s.TensorType.INT32, np.array([1, 2, 3], np.int32))
        mean = self.tensor([1])
        reducer = s.ReducerOptionsT()
        reducer.keepDims = False
        self.op(s.BuiltinOperator.MEAN, [image, axes], [mean], s.BuiltinOptions.ReducerOptions, reducer)
        zeros = self.tensor(table.shape, data=np.zeros(table.shape, np.float32))
        scaled = self.tensor(table.shape)
        self.op(s.BuiltinOperator.MUL, [mean, zeros], [scaled], s.BuiltinOptions.MulOptions, s.MulOptionsT())
        constant = self.tensor(table.shape, data=table.astype(np.float32))
        out = self.tensor(table.shape)
        self.op(s.BuiltinOperator.ADD, [scaled, constant], [out], s.BuiltinOptions.AddOptions, s.AddOptionsT())
        return out

    def write(self, path: Path, inputs, outputs) -> Path:
        flatbuffers, s = _tflite_builder()
        graph = s.SubGraphT()
        graph.tensors, graph.inputs, graph.outputs, graph.operators = self.tensors, list(inputs), list(outputs), \
            self.operators
        graph.name = "main"
        model = s.ModelT()
        model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, self.codes, [graph], self.buffers
        model.description = "test model"
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        Path(path).write_bytes(bytes(builder.Output()))
        return Path(path)


def _image_input(graph: _Graph, input_shape, uint8_quant) -> tuple:
    s = graph.schema
    if uint8_quant is None:
        image = graph.tensor(input_shape, name="image")
        return image, image
    image = graph.tensor(input_shape, s.TensorType.UINT8, name="image", quant=uint8_quant)
    floats = graph.tensor(input_shape)
    graph.op(s.BuiltinOperator.DEQUANTIZE, [image], [floats])
    return image, floats


def tflite_model(path: Path, input_shape: Sequence[int], tables: Sequence[np.ndarray],
                 uint8_quant=None) -> Path:
    """NHWC image in (float, or uint8 with (scale, zero point)) -> the fixed `tables`."""
    _, schema = _tflite_builder()
    graph = _Graph(schema)
    image, floats = _image_input(graph, input_shape, uint8_quant)
    outputs = [graph.constant_plus_input(floats, np.asarray(t, np.float32)) for t in tables]
    return graph.write(path, [image], outputs)


def tflite_ssd(path: Path, input_shape: Sequence[int], anchors: np.ndarray, class_scores: np.ndarray,
               order: Sequence[str] = ("boxes", "classes", "scores", "count"), max_detections: int = 10,
               score_threshold: float = 0.3, uint8_quant=None) -> Path:
    """An SSD ending in TFLite's own TFLite_Detection_PostProcess op. Box encodings are
    zero, so each candidate's box is its anchor (ycenter, xcenter, h, w, normalised);
    class_scores: (A, 1 + classes), background first. Outputs in `order`."""
    from flatbuffers import flexbuffers

    _, s = _tflite_builder()
    graph = _Graph(s)
    image, floats = _image_input(graph, input_shape, uint8_quant)
    count = len(anchors)
    encodings = graph.constant_plus_input(floats, np.zeros((1, count, 4), np.float32))
    scores = graph.constant_plus_input(floats, np.asarray(class_scores, np.float32)[None])
    anchor_tensor = graph.tensor([count, 4], data=np.asarray(anchors, np.float32))
    outs = {"boxes": graph.tensor([1, max_detections, 4], name="detection_boxes"),
            "classes": graph.tensor([1, max_detections], name="detection_classes"),
            "scores": graph.tensor([1, max_detections], name="detection_scores"),
            "count": graph.tensor([1], name="num_detections")}
    options = flexbuffers.Dumps({"max_detections": max_detections, "max_classes_per_detection": 1,
                                 "detections_per_class": 100, "use_regular_nms": False,
                                 "nms_score_threshold": score_threshold, "nms_iou_threshold": 0.6,
                                 "num_classes": int(class_scores.shape[1] - 1), "y_scale": 10.0, "x_scale": 10.0,
                                 "h_scale": 5.0, "w_scale": 5.0})
    graph.op(s.BuiltinOperator.CUSTOM, [encodings, scores, anchor_tensor],
             [outs["boxes"], outs["classes"], outs["scores"], outs["count"]],
             custom="TFLite_Detection_PostProcess", custom_options=bytes(options))
    return graph.write(path, [image], [outs[name] for name in order])


def append_metadata(path: Path, files: Dict[str, str], truncate: int = 0) -> Path:
    """Append a zip holding `files` (name -> text) to the file, as Ultralytics does with
    metadata.json; `truncate` bytes cut off its end."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    data = buffer.getvalue()
    with open(path, "ab") as handle:
        handle.write(data[:len(data) - truncate])
    return Path(path)


def ultralytics_metadata(names: Sequence[str], imgsz, end2end: Optional[bool] = None,
                         task: str = "detect") -> Dict[str, str]:
    """metadata_props as Ultralytics writes them: str() of each value."""
    meta = {"description": "Ultralytics model", "author": "Ultralytics", "stride": "32", "task": task,
            "batch": "1", "imgsz": str(list(imgsz)), "names": str(dict(enumerate(names)))}
    if end2end is not None:
        meta["end2end"] = str(end2end)
    return meta


def ultralytics_tflite_metadata(names: Sequence[str], imgsz, task: str = "detect") -> str:
    return json.dumps({"stride": 32, "task": task, "batch": 1, "imgsz": list(imgsz),
                       "names": {str(i): n for i, n in enumerate(names)}}, indent=2)


# ---- ONNX


def onnx_model(path: Path, input_shape: Sequence[int], tables: Sequence[np.ndarray],
               names: Optional[Sequence[str]] = None, metadata: Optional[Dict[str, str]] = None,
               input_type: str = "float") -> Path:
    """NCHW image -> the fixed `tables` (+ 0 x mean(image)), with metadata_props."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = {"float": TensorProto.FLOAT, "uint8": TensorProto.UINT8}[input_type]
    names = list(names or [f"output{i}" for i in range(len(tables))])
    nodes, inits = [], [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    source = "images"
    if input_type != "float":
        nodes.append(helper.make_node("Cast", ["images"], ["images_f"], to=TensorProto.FLOAT))
        source = "images_f"
    nodes += [helper.make_node("ReduceMean", [source], ["mean"], keepdims=0),
              helper.make_node("Mul", ["mean", "zero"], ["nothing"])]
    outputs = []
    for i, (name, table) in enumerate(zip(names, tables)):
        table = np.asarray(table, np.float32)
        inits.append(numpy_helper.from_array(table, f"table{i}"))
        nodes.append(helper.make_node("Add", [f"table{i}", "nothing"], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(table.shape)))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", elem, list(input_shape))],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return Path(path)
