"""onnxruntime for .onnx files, with its execution providers named by the user or by
the device profile (TensorRT then CUDA on a Jetson, when this onnxruntime build has
them), their own options as PROVIDER.KEY=VALUE, and onnxruntime's exact int8 kernel on
CPUs whose fast one saturates (not for a file whose int8 weights fit 7 bits, on which
the fast one is exact).

    onnxruntime:providers=TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider
    onnxruntime:providers=CUDAExecutionProvider,CPUExecutionProvider,cuda.device_id=1
    onnxruntime:exact_int8=off

With more than one provider (or `placement=on`), the session is profiled for its first
inference at load, so that ran_on() says how many nodes each provider took and which
operators fell back to the CPU: a TensorRT or CUDA session that quietly runs half its
graph on the CPU is otherwise invisible.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.backends import Backend, BackendOption, BackendType, card_quant, first_line
from edgecnn.runtime.exporter_metadata import onnx_metadata
from edgecnn.runtime.model_file import CARD_KEY, read_onnx_card

_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
               "tensor(int8)": np.int8, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
               "tensor(double)": np.float64}
_INTEGER = ("tensor(int8)", "tensor(uint8)")
# what to install for a provider this onnxruntime build lacks
PROVIDER_PACKAGES = {"TensorrtExecutionProvider": "onnxruntime-gpu (with TensorRT)",
                     "CUDAExecutionProvider": "onnxruntime-gpu", "OpenVINOExecutionProvider": "onnxruntime-openvino",
                     "QNNExecutionProvider": "onnxruntime-qnn", "DmlExecutionProvider": "onnxruntime-directml",
                     "CoreMLExecutionProvider": "onnxruntime (macOS build)",
                     "ROCMExecutionProvider": "onnxruntime-rocm"}


def provider_name(text: str) -> str:
    """'TensorrtExecutionProvider', 'tensorrt' or 'TensorRT' -> 'TensorrtExecutionProvider'."""
    import onnxruntime

    known = set(onnxruntime.get_all_providers())
    if text in known:
        return text
    wanted = text.lower().replace("executionprovider", "")
    for name in known:
        if name.lower().replace("executionprovider", "") == wanted:
            return name
    raise ValueError(f"unknown execution provider {text!r}; onnxruntime knows "
                     f"{', '.join(sorted(known))}")


def _parse_providers(values: List[str]) -> List[str]:
    names = [provider_name(value) for value in values if value]
    if not names:
        raise ValueError("name at least one execution provider")
    return names


def _is_provider(text: str) -> bool:
    try:
        provider_name(text)
    except ValueError:
        return False
    return True


def _parse_switch(value: str) -> str:
    if value not in ("auto", "on", "off"):
        raise ValueError(f"expected auto, on or off, got {value!r}")
    return value


def onnx_providers(available: Sequence[str], device_kind: Optional[str] = None) -> List[str]:
    """Execution providers in the device profile's order of preference (TensorRT, CUDA
    on a Jetson) that this onnxruntime build has; always CPU last."""
    from devices.profile import PREFERRED_BACKENDS, detect
    from edgecnn.runtime.backends import split_options

    kind = device_kind or detect().kind
    preferred: List[str] = []
    for entry in PREFERRED_BACKENDS.get(kind, []):
        name, _, rest = entry.partition(":")
        if name == "onnxruntime":
            preferred = split_options(rest, "device profile").get("providers", [])
    chosen = [p for p in preferred if p in available and p != "CPUExecutionProvider"]
    return chosen + ["CPUExecutionProvider"]


def exact_int8_kernel_needed() -> bool:
    """On x86-64 CPUs without VNNI, onnxruntime's default u8s8 int8 convolution kernel
    saturates its 16-bit pair sums: int8 files of the converter tests' CNNs lost 6-28
    points of top-1 agreement with PyTorch there (benchmarks/RESULTS.md, "Runtime").
    onnxruntime's exact x64 kernel (`session.x64quantprecision`) is then used: about 1.4x
    slower on those CPUs, and right."""
    from devices.profile import detect

    return detect().int8_dot_products_saturate


SATURATION_FREE = (-64, 64)  # |w| <= 64: two products 255 x w sum to at most 32640, within int16


def weights_fit_fast_kernel(path: str) -> bool:
    """Whether every int8 weight of the file lies within SATURATION_FREE (what
    `edgecnn quantize --weight-bits 7` writes): then the fast kernel's 16-bit pair sums
    cannot saturate, its results are the exact kernel's, and it is the faster one."""
    from edgecnn.runtime.onnx_wire import int8_weight_range

    try:
        with open(path, "rb") as handle:
            found = int8_weight_range(handle.read())
    except OSError:
        return False
    return found is not None and SATURATION_FREE[0] <= found[0] and found[1] <= SATURATION_FREE[1]


def tensorrt_options() -> dict:
    """TensorRT builds an engine per model on first load (minutes on a Jetson); keep it
    in a cache so later runs start in seconds. Precision stays the model's own (no
    fp16 switch) unless asked for: the card's accuracy was measured at it."""
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgecnn", "tensorrt")
    os.makedirs(cache, exist_ok=True)
    return {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache}


def provider_options(providers: Sequence[str], options: Dict[str, Any]) -> List[Dict[str, str]]:
    """Each provider's own options: the defaults (TensorRT's engine cache), then the
    PROVIDER.KEY=VALUE options given, by the provider's short or full name."""
    per_provider: List[Dict[str, Any]] = [tensorrt_options() if p == "TensorrtExecutionProvider" else {}
                                          for p in providers]
    for key, value in options.items():
        if "." not in key:
            continue
        prefix, _, option = key.partition(".")
        try:
            name = provider_name(prefix)
        except ValueError as exc:
            raise UserError(f"backend onnxruntime: option {key}: {exc}") from None
        if name not in providers:
            raise UserError(f"backend onnxruntime: option {key} is for {name}, which is not among the providers "
                            f"({', '.join(providers)})")
        per_provider[list(providers).index(name)][option] = value
    return [{k: str(v) for k, v in entry.items()} for entry in per_provider]


class OnnxBackend(Backend):
    name = "onnxruntime"
    format = "onnx"

    def __init__(self, path: str, threads: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> None:
        import onnxruntime

        options = dict(options or {})
        self.path, self.threads = path, threads
        session_options = onnxruntime.SessionOptions()
        if threads:
            session_options.intra_op_num_threads = int(threads)
        session_options.inter_op_num_threads = 1
        session_options.log_severity_level = 3
        exact = options.get("exact_int8", "auto")
        # which x64 int8 kernel, where the choice was made: said by ran_on()
        self.int8_kernel: Optional[str] = "exact" if exact == "on" else None
        if exact == "auto" and exact_int8_kernel_needed():
            self.int8_kernel = "fast (int8 weights within 7 bits)" if weights_fit_fast_kernel(path) else "exact"
        if self.int8_kernel == "exact":
            session_options.add_session_config_entry("session.x64quantprecision", "1")
        placement = options.get("placement", "auto")
        available = onnxruntime.get_available_providers()
        if "providers" in options:
            missing = [p for p in options["providers"] if p not in available]
            if missing:
                raise UserError(f"execution provider {missing[0]} is not available in this onnxruntime "
                                f"(available: {', '.join(available)}); pip install "
                                f"{PROVIDER_PACKAGES.get(missing[0], 'an onnxruntime build that has it')}")
            self.providers = list(options["providers"])
        else:
            self.providers = onnx_providers(available)
        profiled = placement == "on" or (placement == "auto" and len(self.providers) > 1)
        if profiled:
            import tempfile

            session_options.enable_profiling = True
            session_options.profile_file_prefix = os.path.join(tempfile.gettempdir(), f"edgecnn-placement-{os.getpid()}")
        try:
            self.session = onnxruntime.InferenceSession(path, session_options, providers=list(zip(
                self.providers, provider_options(self.providers, options))))
        except UserError:
            raise
        except Exception as exc:  # onnxruntime raises its own (non-public) exception types
            raise UserError(f"{path}: cannot load ONNX model: {first_line(exc)}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.card = read_onnx_card(props)
        self.metadata = onnx_metadata(props, CARD_KEY)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise UserError(f"{path}: the runtime runs single-input models, this one has {len(inputs)} inputs")
        first = inputs[0]
        self.input_name = first.name
        self.dynamic_batch = bool(first.shape) and not isinstance(first.shape[0], int)
        self.input_shape = tuple(d if isinstance(d, int) else (1 if i == 0 else -1)
                                 for i, d in enumerate(first.shape))
        if first.type not in _ONNX_TYPES:
            raise UserError(f"{path}: unsupported input type {first.type}")
        self.input_dtype = np.dtype(_ONNX_TYPES[first.type])
        quant = (self.card.quantization if self.card else {}) or {}
        self.input_quant = card_quant(quant.get("input"))
        self.output_names = [o.name for o in self.session.get_outputs()]
        card_outputs = quant.get("outputs") or []
        self.output_quant = [
            card_quant(card_outputs[i]) if i < len(card_outputs) and o.type in _INTEGER else None
            for i, o in enumerate(self.session.get_outputs())]
        if not quant and (first.type in _INTEGER or any(o.type in _INTEGER for o in self.session.get_outputs())):
            # no card: the file's own QuantizeLinear/DequantizeLinear parameters at its integer inputs and outputs
            from edgecnn.runtime.onnx_wire import io_quantization

            with open(path, "rb") as handle:
                read_in, read_out = io_quantization(handle.read())
            self.input_quant = read_in.get(first.name)
            self.output_quant = [read_out.get(o.name) if o.type in _INTEGER else None
                                 for o in self.session.get_outputs()]
        self.placement: Optional[Dict[str, Any]] = self._profiled_placement() if profiled else None

    def _profiled_placement(self) -> Optional[Dict[str, Any]]:
        """One inference on zeros with the profiler on, then the profile read and removed:
        {"nodes": {provider: nodes}, "cpu_ops": {operator: nodes}} (cpu_ops: what runs on
        the CPU provider where another was asked for). None where the input has a free
        spatial size (no blob to run without knowing it)."""
        import json

        shape = [1 if i == 0 and d == -1 else d for i, d in enumerate(self.input_shape)]
        if any(d < 1 for d in shape):
            self.session.end_profiling()
            return None
        self.session.run(self.output_names, {self.input_name: np.zeros(shape, self.input_dtype)})
        profile = self.session.end_profiling()
        try:
            with open(profile) as handle:
                events = json.load(handle)
        finally:
            os.remove(profile)
        return node_placement(events, self.providers)

    def _run(self, blob: np.ndarray) -> List[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: blob})

    def ran_on(self) -> Dict[str, Any]:
        facts = {"backend": self.name, "providers": list(self.session.get_providers()),
                 "requested_providers": list(self.providers), "int8_kernel": self.int8_kernel}
        if self.placement is not None:
            facts.update(self.placement)
        return facts

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


def node_placement(events: List[dict], requested: Sequence[str]) -> Dict[str, Any]:
    """From onnxruntime's profile (Chrome trace events; each node's kernel is a "Node"
    event whose args name its provider and operator): nodes per provider, and the
    operators left to the CPU provider when another was asked for first."""
    nodes: Dict[str, int] = {}
    cpu_ops: Dict[str, int] = {}
    for event in events:
        args = event.get("args") or {}
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time") \
                or "provider" not in args:
            continue
        provider = args["provider"]
        nodes[provider] = nodes.get(provider, 0) + 1
        if provider == "CPUExecutionProvider" and requested and requested[0] != provider:
            cpu_ops[args.get("op_name", "?")] = cpu_ops.get(args.get("op_name", "?"), 0) + 1
    placement: Dict[str, Any] = {"nodes": nodes}
    if cpu_ops:
        placement["cpu_ops"] = dict(sorted(cpu_ops.items(), key=lambda item: -item[1]))
    return placement


BACKEND = BackendType(
    name="onnxruntime", formats=("onnx",), precisions=("fp32", "fp16", "int8"), module="onnxruntime",
    install="onnxruntime", opener=OnnxBackend,
    distributions=("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-qnn"),
    options={"providers": BackendOption("execution providers in order of preference (full or short names: "
                                        "TensorrtExecutionProvider or tensorrt)", _parse_providers, many=True),
             "exact_int8": BackendOption("onnxruntime's exact x64 int8 kernel: auto (on x86 CPUs without VNNI, "
                                         "unless every int8 weight fits 7 bits), on, off", _parse_switch),
             "placement": BackendOption("profile the first inference to count the nodes each provider took: "
                                        "auto (with more than one provider), on, off", _parse_switch)},
    prefixed="PROVIDER", prefix_check=_is_provider,
    summary="onnxruntime: .onnx files; execution providers (TensorRT, CUDA, OpenVINO, CoreML, QNN, ...)")
