"""OpenVINO for .onnx and .tflite files, which it reads itself, on the devices it finds:
the CPU, an Intel GPU or NPU, or AUTO / MULTI / HETERO over them.

    openvino:device=GPU,hint=throughput
    openvino:device=AUTO:GPU,CPU,cache=/var/cache/edgecnn/openvino
    openvino:precision=fp16
    openvino:exact_int8=off

The card, the exporter's metadata, the TFLite quantization parameters and output order
come from the file's own bytes (OpenVINO drops ONNX metadata_props and shows no TFLite
scale or zero point). Precision stays what the file's graph computes in unless asked
for: float32 for fp32 and int8 files and for TFLite float16 ones (which dequantize their
weights to float32), as LiteRT and onnxruntime compute them; OpenVINO itself would pick
bf16 on CPUs with AVX-512 BF16 or AMX and f16 on GPUs, while the card's accuracy was
measured at float32. Half ONNX files compute in f16 where the device has it.

OpenVINO's IR (.xml) is not run: converting a file to it drops the card, and its default
save compresses the weights to f16.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edgecnn.core.descriptors import native_stderr
from edgecnn.core.errors import UserError
from edgecnn.runtime.backends import Backend, BackendOption, BackendType, card_quant
from edgecnn.runtime.exporter_metadata import appended_zip, onnx_metadata
from edgecnn.runtime.model_file import CARD_KEY, model_format, read_onnx_card, read_tflite_card

VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")  # they spread a model over the real ones
HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
PRECISIONS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}  # INFERENCE_PRECISION_HINT values


@functools.lru_cache(maxsize=1)
def core():
    import openvino

    return openvino.Core()


def present_devices() -> List[str]:
    return list(core().available_devices)


def split_device(text: str) -> Tuple[Optional[str], List[str]]:
    """'AUTO:GPU,CPU' -> ('AUTO', ['GPU', 'CPU']); 'AUTO' -> ('AUTO', []); 'CPU' -> (None, ['CPU'])."""
    virtual, colon, listed = text.partition(":")
    if colon or virtual.upper() in VIRTUAL_DEVICES:
        return virtual.upper(), [name.strip() for name in listed.split(",") if name.strip()]
    return None, [text]


def _parse_device(values: List[str]) -> str:
    """A device OpenVINO sees here (CPU, GPU, GPU.1, NPU), or a virtual device over them."""
    text = ",".join(value.strip() for value in values if value.strip())
    if not text:
        raise ValueError("name a device, e.g. CPU, GPU, NPU or AUTO")
    try:
        present = present_devices()
    except ImportError:
        raise ValueError("openvino is not installed (pip install openvino)") from None
    virtual, real = split_device(text)
    if virtual is not None and virtual not in VIRTUAL_DEVICES:
        raise ValueError(f"{virtual} is not a device OpenVINO spreads models with ({', '.join(VIRTUAL_DEVICES)})")
    for name in real:
        if name not in present and not any(found.startswith(name + ".") for found in present):
            raise ValueError(f"{name} is not present here; OpenVINO sees {', '.join(present) or 'none'}")
    return text


def _parse_choice(choices: Dict[str, str]):
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected {' or '.join(choices)}, got {value!r}")
        return value

    return parse


def _parse_cache(value: str) -> str:
    if not value:
        raise ValueError("give a directory for compiled models")
    return value


def _parse_switch(value: str) -> str:
    if value not in ("auto", "on", "off"):
        raise ValueError(f"expected auto, on or off, got {value!r}")
    return value


def exact_int8_needed() -> bool:
    """On x86-64 CPUs without VNNI, OpenVINO's int8 kernels, like onnxruntime's, drift
    from the integer arithmetic the file was measured with: on the bundled int8 detector
    (AVX2, no VNNI) they lost 2 points of mAP@0.5:0.95 against LiteRT and left 58 of 834
    boxes without a partner in LiteRT's detections; with the quantized layers in float32
    arithmetic (the CPU plugin's low-precision transformations off) the mAP was LiteRT's
    and 7 boxes were unpartnered, at a latency cost (benchmarks/openvino_results.md)."""
    from devices.profile import detect

    return detect().int8_dot_products_saturate


def openvino_reason(exc: BaseException) -> str:
    """OpenVINO's message without its source-location lines: the last line says why."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(exc).__name__


def _precision_name(value: Any) -> Optional[str]:
    name = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
    return {v: k for k, v in PRECISIONS.items()}.get(name, name)


class OpenVinoBackend(Backend):
    name = "openvino"

    def __init__(self, path: str, threads: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> None:
        options = dict(options or {})
        self.path, self.threads = path, threads
        self.format = model_format(path)
        with open(path, "rb") as handle:
            data = handle.read()
        # from the file: the input's int8 parameters, the output names in the model's order
        # (None: OpenVINO's order is the model's) and the outputs' int8 parameters
        try:
            read = self._read_tflite if self.format == "tflite" else self._read_onnx
            quant_in, output_names, output_quant = read(data)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        openvino_core = core()
        model, reason = None, ""
        with native_stderr() as printed:  # its other frontends' parse errors on a corrupt file
            try:
                model = openvino_core.read_model(path)
            except Exception as exc:  # OpenVINO raises RuntimeError and its own types
                printed.forward, reason = False, openvino_reason(exc)
        if model is None:
            raise UserError(f"{path}: OpenVINO cannot read it: {reason}")
        if len(model.inputs) != 1:
            raise UserError(f"{path}: the runtime runs single-input models, this one has {len(model.inputs)} inputs")
        self.device = options.get("device", "CPU")
        self.file_precision = self._file_precision()
        self.requested_precision = options.get("precision") or self._own_compute_precision()
        self.exact_int8 = self._exact_int8(options.get("exact_int8", "auto"))
        config = self._config(threads, options)
        try:
            self.compiled = openvino_core.compile_model(model, self.device, config)
        except Exception as exc:
            raise UserError(f"{path}: OpenVINO cannot compile it for {self.device}: {openvino_reason(exc)}") \
                from None
        self.request = self.compiled.create_infer_request()
        port = self.compiled.input(0)
        partial = port.get_partial_shape()
        self.dynamic_batch = len(partial) > 0 and not partial[0].is_static
        self.input_shape = tuple(d.get_length() if d.is_static else (1 if i == 0 else -1)
                                 for i, d in enumerate(partial))
        self.input_dtype = np.dtype(port.get_element_type().to_dtype())
        self.input_quant = quant_in if np.issubdtype(self.input_dtype, np.integer) else None
        self.output_order, self.output_names, self.output_quant = self._outputs(output_names, output_quant)

    # ---- what the file says

    def _read_tflite(self, data: bytes):
        from edgecnn.runtime.tflite_wire import read_graph

        graph = read_graph(data)
        self.card = read_tflite_card(data)
        self.metadata = appended_zip(data)
        ordered = [graph.tensors[i] for i in graph.outputs_in_model_order()]
        quant_in = graph.tensors[graph.inputs[0]].quant if graph.inputs else None
        return quant_in, [t.name for t in ordered], {t.name: t.quant for t in ordered}

    def _read_onnx(self, data: bytes):
        """The int8 parameters come from the card (its outputs in the graph's order), else
        from the file's own Quantize/DequantizeLinear at its inputs and outputs."""
        from edgecnn.runtime.onnx_wire import io_quantization, metadata_props

        props = metadata_props(data)
        self.card = read_onnx_card(props)
        self.metadata = onnx_metadata(props, CARD_KEY)
        quant = (self.card.quantization if self.card else {}) or {}
        if quant:
            return card_quant(quant.get("input")), None, [card_quant(entry) for entry in quant.get("outputs") or []]
        read_in, read_out = io_quantization(data)
        return next(iter(read_in.values()), None), None, read_out

    def _file_precision(self) -> str:
        from edgecnn.runtime.precision import file_precision

        return self.card.precision if self.card is not None else file_precision(self.path)

    def _own_compute_precision(self) -> str:
        """What the file's graph computes in: float16 in a half ONNX file; float32 in every
        TFLite file (a float16 one dequantizes its weights to float32 in the graph) and
        in fp32 and int8 files (their float layers)."""
        return "fp16" if self.format == "onnx" and self.file_precision == "fp16" else "fp32"

    def _exact_int8(self, switch: str) -> bool:
        on_cpu = self.device == "CPU" or "CPU" in split_device(self.device)[1] or self.device in VIRTUAL_DEVICES
        if switch == "on" and not on_cpu:
            raise UserError(f"backend openvino: exact_int8 is a CPU setting; device {self.device} has no CPU")
        int8 = self.file_precision == "int8"
        return on_cpu and (switch == "on" or (switch == "auto" and int8 and exact_int8_needed()))

    # ---- compiling

    def _device_settings(self, device: str, threads: Optional[int], options: Dict[str, Any]) -> Dict[str, Any]:
        """The properties one real device takes, among those it supports."""
        supported = core().get_property(device, "SUPPORTED_PROPERTIES")
        wanted: Dict[str, Any] = {"INFERENCE_PRECISION_HINT": PRECISIONS[self.requested_precision],
                                  "PERFORMANCE_HINT": HINTS[options.get("hint", "latency")]}
        if threads:
            wanted["INFERENCE_NUM_THREADS"] = int(threads)
        settings = {key: value for key, value in wanted.items() if key in supported}
        if device.startswith("CPU") and self.exact_int8:
            settings["LP_TRANSFORMS_MODE"] = "NO"  # the CPU plugin's switch, not in its supported list
        return settings

    def _config(self, threads: Optional[int], options: Dict[str, Any]) -> Dict[str, Any]:
        virtual, real = split_device(self.device)
        if virtual is None:
            config = self._device_settings(real[0], threads, options)
        else:
            devices = real or present_devices()
            config = {"DEVICE_PROPERTIES": {d: self._device_settings(d, threads, options) for d in devices}}
            if virtual != "HETERO":
                config["PERFORMANCE_HINT"] = HINTS[options.get("hint", "latency")]
        if options.get("cache"):
            try:
                os.makedirs(options["cache"], exist_ok=True)
            except OSError as exc:
                raise UserError(f"backend openvino: cache directory {options['cache']}: "
                                f"{exc.strerror or exc}") from None
            config["CACHE_DIR"] = options["cache"]
        return config

    def _outputs(self, names_in_order: Optional[List[str]], quant) -> Tuple[List[int], List[str], list]:
        """OpenVINO's outputs in the model's order, their names and the int8 parameters of
        the integer ones (`quant`: by output name, or a list in the model's order)."""
        ports = list(self.compiled.outputs)
        order = list(range(len(ports)))
        if names_in_order:
            where = {name: i for i, port in enumerate(ports) for name in port.get_names()}
            if sorted(where.get(name, -1) for name in names_in_order) == order:
                order = [where[name] for name in names_in_order]
        chosen = [ports[i] for i in order]
        if isinstance(quant, dict):
            found = [next((quant[n] for n in port.get_names() if n in quant), None) for port in chosen]
        else:
            found = list(quant[:len(chosen)]) + [None] * (len(chosen) - len(quant))
        integer = [np.issubdtype(np.dtype(port.get_element_type().to_dtype()), np.integer) for port in chosen]
        return order, [port.get_any_name() for port in chosen], [q if i else None for q, i in zip(found, integer)]

    # ---- running

    def _run(self, blob: np.ndarray) -> List[np.ndarray]:
        self.request.infer({0: blob})
        return [self.request.get_output_tensor(i).data.copy() for i in self.output_order]

    def ran_on(self) -> Dict[str, Any]:
        """The devices that compiled it and the precision they compute in (None where a
        virtual device does not say)."""
        try:
            precision = _precision_name(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        except RuntimeError:
            precision = None
        return {"backend": self.name, "devices": list(self.compiled.get_property("EXECUTION_DEVICES")),
                "requested_device": self.device, "precision": precision,
                "requested_precision": self.requested_precision, "exact_int8": self.exact_int8}

    def tensors(self) -> dict:
        def entry(port, quant):
            shape = [d.get_length() if d.is_static else "?" for d in port.get_partial_shape()]
            return {"name": port.get_any_name(), "shape": shape,
                    "dtype": np.dtype(port.get_element_type().to_dtype()).name, "quantization": quant}

        ports = list(self.compiled.outputs)
        return {"inputs": [entry(self.compiled.input(0), self.input_quant)],
                "outputs": [entry(ports[i], q) for i, q in zip(self.output_order, self.output_quant)]}

    def op_counts(self) -> dict:
        """The file's own operators (as the other backends count them)."""
        with open(self.path, "rb") as handle:
            data = handle.read()
        if self.format == "tflite":
            from edgecnn.runtime.tflite_wire import read_graph

            return read_graph(data).op_counts()
        from edgecnn.runtime.onnx_wire import onnx_op_counts

        return onnx_op_counts(data)


BACKEND = BackendType(
    name="openvino", formats=("onnx", "tflite"), precisions=("fp32", "fp16", "int8"), module="openvino",
    install="openvino", opener=OpenVinoBackend,
    options={"device": BackendOption("CPU (default), GPU, NPU, GPU.1, or AUTO / MULTI / HETERO over them "
                                     "(AUTO:GPU,CPU); checked against the devices OpenVINO sees", _parse_device,
                                     many=True),
             "hint": BackendOption("performance hint: latency (default) or throughput", _parse_choice(HINTS)),
             "precision": BackendOption("inference precision: fp32, fp16 or bf16 (default: what the file "
                                        "computes in: fp32, or fp16 for half ONNX files)", _parse_choice(PRECISIONS)),
             "cache": BackendOption("a directory for compiled models (later loads skip compiling)", _parse_cache),
             "exact_int8": BackendOption("int8 layers in float32 arithmetic instead of OpenVINO's int8 kernels: "
                                         "auto (on x86 CPUs without VNNI), on, off", _parse_switch)},
    summary="OpenVINO: .onnx and .tflite files; CPU, Intel GPU and NPU, AUTO")
