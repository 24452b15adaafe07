"""Inference backends behind one small interface, so the runtime, the benchmarks and
user code run .tflite and .onnx files the same way.

- LiteRT (`ai-edge-litert`, with `tflite-runtime` as a fallback import: it is what a
  Raspberry Pi with numpy<2 may have) for .tflite files;
- onnxruntime for .onnx files; on a Jetson the TensorRT and CUDA execution providers
  are put first when this onnxruntime build has them.

`infer` always takes the float32 blob that `preprocess()` returns and always gives
float32 outputs in the model's output order: int8/uint8 inputs are quantized and
integer outputs dequantized here, with the scale and zero point from the file
(TFLite tensor parameters) or from the model card (ONNX). Imports neither torch nor onnx.
"""
from __future__ import annotations

import importlib.util
import os
import struct
import sys
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.runtime.native_stderr import native_stderr
from edgecnn.runtime.exporter_metadata import appended_zip, onnx_metadata
from edgecnn.runtime.model_file import CARD_KEY, model_format, read_onnx_card, read_tflite_card

BACKENDS = ("onnxruntime", "litert", "tflite-runtime")
# Backend name -> (module that provides it, file format it runs)
_PROVIDERS = {"onnxruntime": ("onnxruntime", "onnx"), "litert": ("ai_edge_litert", "tflite"),
              "tflite-runtime": ("tflite_runtime", "tflite")}
_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
               "tensor(int8)": np.int8, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
               "tensor(double)": np.float64}

Quant = Optional[Tuple[float, int]]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def quantize(blob: np.ndarray, dtype: np.dtype, quant: Quant) -> np.ndarray:
    """float32 -> the model's integer input type: q = round(x / scale) + zero_point, clipped."""
    info = np.iinfo(dtype)
    if quant is None:  # an integer input without parameters takes raw values (e.g. pixels)
        return np.clip(np.rint(blob), info.min, info.max).astype(dtype)
    scale, zero_point = quant
    return np.clip(np.rint(blob / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, quant: Quant) -> np.ndarray:
    if quant is None:
        return values.astype(np.float32, copy=False)
    scale, zero_point = quant
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def _card_quant(entry) -> Quant:
    if isinstance(entry, dict) and entry.get("scale"):
        return float(entry["scale"]), int(entry.get("zero_point", 0))
    return None


class Backend:
    """One loaded model. Attributes are filled by the subclass from the file itself.

    input_shape has 1 for a dynamic batch dimension and -1 for other dynamic ones.
    """

    name: str = ""
    path: str
    threads: Optional[int]
    input_shape: Tuple[int, ...]
    input_dtype: np.dtype
    input_quant: Quant = None
    output_names: List[str]
    output_quant: List[Quant]
    card: Optional[ModelCard] = None
    # what another toolkit's exporter wrote into the file (edgecnn.runtime.exporter_metadata)
    metadata: dict = {}

    def infer(self, blob: np.ndarray) -> List[np.ndarray]:
        """float32 blob -> float32 outputs in the model's output order."""
        if blob.shape != self.input_shape and not self._shape_fits(blob.shape):
            raise UserError(f"{self.path}: input of shape {tuple(blob.shape)} given, the model takes "
                            f"{self.input_shape}")
        if np.issubdtype(self.input_dtype, np.integer):
            blob = quantize(blob, self.input_dtype, self.input_quant)
        elif blob.dtype != self.input_dtype:
            blob = blob.astype(self.input_dtype)
        raw = self._run(blob)
        return [dequantize(value, quant) for value, quant in zip(raw, self.output_quant)]

    def _shape_fits(self, shape: Sequence[int]) -> bool:
        return len(shape) == len(self.input_shape) and all(
            want < 0 or want == got for want, got in zip(self.input_shape, shape))

    def _run(self, blob: np.ndarray) -> List[np.ndarray]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({os.path.basename(self.path)}, threads={self.threads or 'default'})"

    def tensors(self) -> dict:
        """{"inputs": [...], "outputs": [...]}, each {name, shape, dtype, quantization}."""
        raise NotImplementedError

    def op_counts(self) -> dict:
        """How many of each operator the graph holds."""
        raise NotImplementedError


class OnnxBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        import onnxruntime

        self.path, self.threads = path, threads
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if exact_int8_kernel_needed():
            options.add_session_config_entry("session.x64quantprecision", "1")
        self.providers = onnx_providers(onnxruntime.get_available_providers())
        try:
            self.session = onnxruntime.InferenceSession(path, options, providers=[
                (name, tensorrt_options()) if name == "TensorrtExecutionProvider" else name for name in self.providers])
        except Exception as exc:  # onnxruntime raises its own (non-public) exception types
            raise UserError(f"{path}: cannot load ONNX model: {_first_line(exc)}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.card = read_onnx_card(props)
        self.metadata = onnx_metadata(props, CARD_KEY)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise UserError(f"{path}: the runtime runs single-input models, this one has {len(inputs)} inputs")
        first = inputs[0]
        self.input_name = first.name
        self.input_shape = tuple(d if isinstance(d, int) else (1 if i == 0 else -1)
                                 for i, d in enumerate(first.shape))
        if first.type not in _ONNX_TYPES:
            raise UserError(f"{path}: unsupported input type {first.type}")
        self.input_dtype = np.dtype(_ONNX_TYPES[first.type])
        quant = (self.card.quantization if self.card else {}) or {}
        self.input_quant = _card_quant(quant.get("input"))
        self.output_names = [o.name for o in self.session.get_outputs()]
        card_outputs = quant.get("outputs") or []
        self.output_quant = [
            _card_quant(card_outputs[i]) if i < len(card_outputs) and o.type in ("tensor(int8)", "tensor(uint8)")
            else None for i, o in enumerate(self.session.get_outputs())]
        integer = ("tensor(int8)", "tensor(uint8)")
        if not quant and (first.type in integer or any(o.type in integer for o in self.session.get_outputs())):
            # no card: the file's own QuantizeLinear/DequantizeLinear parameters at its integer inputs and outputs
            from edgecnn.runtime.onnx_wire import io_quantization

            with open(path, "rb") as handle:
                read_in, read_out = io_quantization(handle.read())
            self.input_quant = read_in.get(first.name)
            self.output_quant = [read_out.get(o.name) if o.type in integer else None
                                 for o in self.session.get_outputs()]

    def _run(self, blob: np.ndarray) -> List[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: blob})

    def tensors(self) -> dict:
        def entry(node, quant):
            return {"name": node.name, "shape": [d if isinstance(d, int) else str(d) for d in node.shape],
                    "dtype": node.type.replace("tensor(", "").rstrip(")"), "quantization": quant}

        return {"inputs": [entry(node, self.input_quant) for node in self.session.get_inputs()],
                "outputs": [entry(node, quant) for node, quant in zip(self.session.get_outputs(), self.output_quant)]}

    def op_counts(self) -> dict:
        from edgecnn.runtime.onnx_wire import onnx_op_counts

        with open(self.path, "rb") as handle:
            return onnx_op_counts(handle.read())


def onnx_providers(available: Sequence[str], device_kind: Optional[str] = None) -> List[str]:
    """Execution providers in order of preference: TensorRT, CUDA on a Jetson (when this
    onnxruntime build has them), always CPU last."""
    if device_kind is None:
        from devices.profile import detect

        device_kind = detect().kind
    preferred = ["TensorrtExecutionProvider", "CUDAExecutionProvider"] if device_kind == "jetson" else []
    return [p for p in preferred if p in available] + ["CPUExecutionProvider"]


def exact_int8_kernel_needed() -> bool:
    """On x86-64 CPUs without VNNI, onnxruntime's default u8s8 int8 convolution kernel
    saturates its 16-bit pair sums: int8 files of the converter tests' CNNs lost 6-28
    points of top-1 agreement with PyTorch there (benchmarks/RESULTS.md, "Runtime").
    onnxruntime's exact x64 kernel (`session.x64quantprecision`) is then used: about 1.4x
    slower on those CPUs, and right."""
    from devices.profile import detect

    return detect().int8_dot_products_saturate


def tensorrt_options() -> dict:
    """TensorRT builds an engine per model on first load (minutes on a Jetson); keep it
    in a cache so later runs start in seconds. Precision stays the model's own (no
    fp16 switch): the card's accuracy was measured at it."""
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgecnn", "tensorrt")
    os.makedirs(cache, exist_ok=True)
    return {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache}


class LiteRTBackend(Backend):
    """ai-edge-litert's Interpreter (XNNPACK on by default, fp32 and int8), or
    tflite-runtime's, which has the same API."""

    def __init__(self, path: str, threads: Optional[int] = None, name: str = "litert") -> None:
        if name == "litert":
            from ai_edge_litert.interpreter import Interpreter
        else:
            from tflite_runtime.interpreter import Interpreter
        self.name, self.path, self.threads = name, path, threads
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise UserError(f"{path}: cannot read model: {exc.strerror or exc}") from None
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise UserError(f"{path}: not a TFLite model (no TFL3 identifier): corrupt or not a .tflite file")
        try:
            self.card = read_tflite_card(data)
        except (struct.error, TypeError) as exc:  # flatbuffers on a truncated file
            raise UserError(f"{path}: corrupt or truncated TFLite file: {_first_line(exc)}") from None
        self.metadata = appended_zip(data)
        try:
            with native_stderr():  # drops TFLite's per-load delegate notice
                self.interpreter = Interpreter(model_content=data, num_threads=threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"{path}: cannot load TFLite model (corrupt or truncated?): {_first_line(exc)}") from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise UserError(f"{path}: the runtime runs single-input models, this one has {len(inputs)} inputs")
        first = inputs[0]
        self.input_index = first["index"]
        self.input_shape = tuple(int(d) for d in first["shape"])
        self.input_dtype = np.dtype(first["dtype"])
        self.input_quant = _tensor_quant(first)
        outputs = self._outputs_in_model_order()
        self.output_indices = [o["index"] for o in outputs]
        self.output_names = [o["name"] for o in outputs]
        self.output_quant = [_tensor_quant(o) if np.issubdtype(np.dtype(o["dtype"]), np.integer) else None
                             for o in outputs]

    def _outputs_in_model_order(self) -> list:
        """Outputs in the order the source model returned them: the signature's output
        names (output_0, output_1, ...) carry that order when present."""
        details = self.interpreter.get_output_details()
        by_index = {d["index"]: d for d in details}
        try:
            signatures = self.interpreter._get_full_signature_list()  # pylint: disable=protected-access
        except AttributeError:
            signatures = None
        if signatures and len(signatures) == 1:
            outputs = next(iter(signatures.values())).get("outputs", {})
            keys = list(outputs)
            if keys and all(k.startswith("output_") and k[7:].isdigit() for k in keys):
                ordered = [by_index.get(outputs[k]) for k in sorted(keys, key=lambda k: int(k[7:]))]
                if all(o is not None for o in ordered) and len(ordered) == len(details):
                    return ordered
        return details

    def _run(self, blob: np.ndarray) -> List[np.ndarray]:
        self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(blob))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self.output_indices]

    def tensors(self) -> dict:
        def entry(detail):
            return {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
                    "dtype": np.dtype(detail["dtype"]).name, "quantization": _tensor_quant(detail)}

        return {"inputs": [entry(d) for d in self.interpreter.get_input_details()],
                "outputs": [entry(d) for d in self.interpreter.get_output_details()]}

    def op_counts(self) -> dict:
        from collections import Counter

        return dict(Counter(op["op_name"] for op in self.interpreter._get_ops_details()))


def _tensor_quant(detail: dict) -> Quant:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return (float(scale), int(zero_point)) if scale else None


def installed(name: str) -> bool:
    module = _PROVIDERS[name][0]
    if module in sys.modules:  # already imported (or blocked with None)
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def backends_for(path: str) -> List[str]:
    """Backends that can run this file on this machine, preferred first."""
    fmt = model_format(path)
    return [name for name in BACKENDS if _PROVIDERS[name][1] == fmt and installed(name)]


def open_backend(path: str, backend: str = "auto", threads: Optional[int] = None) -> Backend:
    """Load `path` with the named backend ("auto": LiteRT for .tflite, onnxruntime for .onnx)."""
    fmt = model_format(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such model file")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    if backend == "auto":
        names = backends_for(path)
        if not names:
            wanted = "ai-edge-litert (or tflite-runtime)" if fmt == "tflite" else "onnxruntime"
            raise UserError(f"{path}: no backend for .{fmt} files is installed; pip install {wanted}")
        backend = names[0]
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose from auto, {', '.join(BACKENDS)}")
    if _PROVIDERS[backend][1] != fmt:
        raise UserError(f"backend {backend} cannot run .{fmt} files (it runs .{_PROVIDERS[backend][1]})")
    if not installed(backend):
        raise UserError(f"backend {backend} is not installed (pip install "
                        f"{_PROVIDERS[backend][0].replace('_', '-')})")
    if backend == "onnxruntime":
        return OnnxBackend(path, threads)
    return LiteRTBackend(path, threads, backend)


def timed_runs(infer: Callable[[np.ndarray], Any], blob: np.ndarray, runs: int,
               progress: Optional[Callable[[int], None]] = None) -> List[float]:
    """Per-call latency in ms. The clock is read around each call only, so the progress
    callback and bookkeeping are not in the figures."""
    clock = time.perf_counter_ns
    times = []
    for _ in range(runs):
        start = clock()
        infer(blob)
        times.append((clock() - start) / 1e6)
        if progress:
            progress(1)
    return times
