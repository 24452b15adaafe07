"""What the two TFLite interpreters share (ai-edge-litert's and tflite-runtime's have the
same API): loading with the card and the exporter's metadata, XNNPACK on or off, an
external delegate by library path with its options, and the model's output order."""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.backends import Backend, BackendOption, first_line
from edgecnn.runtime.exporter_metadata import appended_zip
from edgecnn.runtime.model_file import read_tflite_card
from edgecnn.core.descriptors import native_stderr


def _parse_switch(value: str) -> bool:
    if value not in ("on", "off"):
        raise ValueError(f"expected on or off, got {value!r}")
    return value == "on"


def _parse_library(value: str) -> str:
    if not value:
        raise ValueError("give the delegate's shared library, e.g. /usr/lib/libedgetpu.so.1")
    return value


OPTIONS = {"delegate": BackendOption("an external delegate's shared library (Coral: libedgetpu.so.1, a GPU or "
                                     "vendor NPU delegate), loaded with its delegate.KEY=VALUE options",
                                     _parse_library),
           "xnnpack": BackendOption("the default XNNPACK CPU delegate: on (default) or off (reference kernels)",
                                    _parse_switch)}


def _tensor_quant(detail: dict):
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return (float(scale), int(zero_point)) if scale else None


class TFLiteBackend(Backend):
    """A .tflite file in `interpreter_module`'s Interpreter (XNNPACK on by default, fp32 and int8)."""

    format = "tflite"

    def __init__(self, path: str, threads: Optional[int], options: Dict[str, Any], name: str,
                 interpreter_module) -> None:
        self.name, self.path, self.threads = name, path, threads
        Interpreter = interpreter_module.Interpreter
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise UserError(f"{path}: cannot read model: {exc.strerror or exc}") from None
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise UserError(f"{path}: not a TFLite model (no TFL3 identifier): corrupt or not a .tflite file")
        try:
            self.card = read_tflite_card(data)
        except UserError as exc:  # tables past the end of a truncated file, a card that does not parse
            raise UserError(f"{path}: {exc}") from None
        self.metadata = appended_zip(data)
        self.delegate = options.get("delegate")
        delegates = [self._load_delegate(interpreter_module, options)] if self.delegate else None
        self.xnnpack = options.get("xnnpack", True)
        extra = {}
        if not self.xnnpack:
            extra["experimental_op_resolver_type"] = interpreter_module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            with native_stderr():  # drops TFLite's per-load delegate notice
                self.interpreter = Interpreter(model_content=data, num_threads=threads,
                                               experimental_delegates=delegates, **extra)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"{path}: cannot load TFLite model (corrupt or truncated?): {first_line(exc)}") from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise UserError(f"{path}: the runtime runs single-input models, this one has {len(inputs)} inputs")
        first = inputs[0]
        self.input_index = first["index"]
        self.input_shape = tuple(int(d) for d in first["shape"])
        signature = first.get("shape_signature")
        self.dynamic_batch = signature is not None and len(signature) > 0 and int(signature[0]) == -1
        self._batch = self.input_shape[0]
        self.input_dtype = np.dtype(first["dtype"])
        self.input_quant = _tensor_quant(first)
        outputs = self._outputs_in_model_order()
        self.output_indices = [o["index"] for o in outputs]
        self.output_names = [o["name"] for o in outputs]
        self.output_quant = [_tensor_quant(o) if np.issubdtype(np.dtype(o["dtype"]), np.integer) else None
                             for o in outputs]

    def _load_delegate(self, interpreter_module, options: Dict[str, Any]):
        settings = {key.partition(".")[2]: value for key, value in options.items() if key.startswith("delegate.")}
        try:
            with native_stderr():
                return interpreter_module.load_delegate(self.delegate, settings or None)
        except (ValueError, OSError, RuntimeError) as exc:
            raise UserError(f"backend {self.name}: cannot load delegate {self.delegate} ({first_line(exc)}); "
                            f"install the library its vendor provides (Coral: libedgetpu1-std) or fix the "
                            f"path") from None

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
        if blob.shape[0] != self._batch:  # a file with a dynamic batch, asked for another batch size
            self.interpreter.resize_tensor_input(self.input_index, list(blob.shape))
            self.interpreter.allocate_tensors()
            self._batch = blob.shape[0]
        self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(blob))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self.output_indices]

    def ran_on(self) -> Dict[str, Any]:
        """Delegated partitions are the DELEGATE nodes in the execution plan: XNNPACK's
        (the default) or the external delegate's; the other nodes run on the built-in
        CPU kernels."""
        ops = self.op_counts()
        return {"backend": self.name, "delegate": self.delegate or ("xnnpack" if self.xnnpack else None),
                "delegated_partitions": int(ops.get("DELEGATE", 0))}

    def tensors(self) -> dict:
        def entry(detail):
            return {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
                    "dtype": np.dtype(detail["dtype"]).name, "quantization": _tensor_quant(detail)}

        return {"inputs": [entry(d) for d in self.interpreter.get_input_details()],
                "outputs": [entry(d) for d in self.interpreter.get_output_details()]}

    def op_counts(self) -> dict:
        return dict(Counter(op["op_name"] for op in self.interpreter._get_ops_details()))
