"""The backend seam: an inference engine is one module here exposing `BACKEND`, a
`BackendType`. It says which model files it runs, which precisions, the options it
takes (execution providers, delegates, devices) and how it loads a file; the loaded
`Backend` runs the float32 blob that `preprocess()` makes and reports what actually ran.

One grammar names a backend and its options everywhere (`run`, `bench`, `load()`, the
device profile):

    NAME[:OPTION=VALUE,OPTION=VALUE,...]
    onnxruntime:providers=TensorrtExecutionProvider,CPUExecutionProvider,tensorrt.trt_fp16_enable=1
    litert:delegate=/usr/lib/libedgetpu.so.1,delegate.device=usb

A comma-separated value continues the option before it (`providers=A,B`); an option a
backend does not declare is one line listing the ones it does.

`infer` always takes float32 and gives float32 outputs in the model's output order:
int8/uint8 inputs are quantized and integer outputs dequantized here, with the scale
and zero point from the file or the model card. Imports neither torch nor onnx.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.card import ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.registry import Registry
from edgecnn.runtime.model_file import model_format

_BACKENDS = Registry("edgecnn.runtime.backends", "BACKEND", "backend")

Quant = Optional[Tuple[float, int]]


def first_line(exc: BaseException) -> str:
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


def card_quant(entry) -> Quant:
    """(scale, zero point) of one card quantization entry, or None."""
    if isinstance(entry, dict) and entry.get("scale"):
        return float(entry["scale"]), int(entry.get("zero_point", 0))
    return None


class Backend:
    """One loaded model. Attributes are filled by the subclass from the file itself.

    input_shape has 1 for a dynamic batch dimension and -1 for other dynamic ones;
    `dynamic_batch` says whether the file takes several images in one call.
    """

    name: str = ""
    format: str = ""  # the file format it loaded: 'onnx' | 'tflite'
    path: str
    threads: Optional[int]
    options: Dict[str, Any] = {}  # the backend options it was opened with
    input_shape: Tuple[int, ...]
    input_dtype: np.dtype
    input_quant: Quant = None
    dynamic_batch: bool = False
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
            want < 0 or want == got or (axis == 0 and self.dynamic_batch)
            for axis, (want, got) in enumerate(zip(self.input_shape, shape)))

    def _run(self, blob: np.ndarray) -> List[np.ndarray]:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} ({os.path.basename(self.path)}, threads={self.threads or 'default'})"

    def ran_on(self) -> Dict[str, Any]:
        """What actually runs the model: the engine's own account (execution providers
        registered, delegates and the partitions they took, devices)."""
        return {"backend": self.name}

    def ran_on_text(self) -> str:
        """ran_on() in one line for the run's log: `litert: delegate xnnpack,
        delegated_partitions 1`."""
        facts, ran_on = [], self.ran_on()
        for key, value in ran_on.items():
            if key == "backend" or value in (None, [], {}, "") or \
                    (key.startswith("requested_") and ran_on.get(key[len("requested_"):]) == value):
                continue
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            elif isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            facts.append(f"{key} {value}")
        return f"{self.name}: {'; '.join(facts)}" if facts else self.name

    def tensors(self) -> dict:
        """{"inputs": [...], "outputs": [...]}, each {name, shape, dtype, quantization}."""
        raise NotImplementedError

    def op_counts(self) -> dict:
        """How many of each operator the graph holds."""
        raise NotImplementedError


@dataclass
class BackendOption:
    """One option a backend takes: `parse` turns the text value(s) into what the
    backend uses (raising ValueError with the reason); `help` says what it does."""

    help: str
    parse: Callable[[Any], Any] = str
    many: bool = False  # takes a comma-separated list (providers=A,B)


@dataclass
class BackendType:
    """One inference engine. `opener(path, threads, options)` loads a file; options are
    already parsed. `prefixed` options are families named PREFIX.KEY (a provider's or a
    delegate's own settings), passed on to the engine, which checks their keys."""

    name: str
    formats: Tuple[str, ...]  # file formats it runs: 'onnx', 'tflite', ...
    precisions: Tuple[str, ...]  # fp32, fp16, int8
    module: str  # the import that must succeed for it to be installed
    install: str  # what to pip install
    opener: Callable[[str, Optional[int], Dict[str, Any]], Backend]
    options: Dict[str, BackendOption] = field(default_factory=dict)
    # PREFIX.KEY option families: what PREFIX may be (shown in help and errors), and a
    # check of a given prefix (default: equal to `prefixed`)
    prefixed: str = ""
    prefix_check: Optional[Callable[[str], bool]] = None
    summary: str = ""
    distributions: Tuple[str, ...] = ()  # pip distributions that provide it (default: `install`)

    def __post_init__(self) -> None:
        self.distributions = self.distributions or (self.install,)

    def installed(self) -> bool:
        top = self.module.split(".")[0]
        if top in sys.modules:  # already imported (or blocked with None)
            return sys.modules[top] is not None
        try:
            return importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            return False

    def runs(self, fmt: str) -> bool:
        return fmt in self.formats

    def known_options(self) -> List[str]:
        return list(self.options) + ([f"{self.prefixed}.KEY"] if self.prefixed else [])

    def takes_prefix(self, prefix: str) -> bool:
        if not self.prefixed:
            return False
        return self.prefix_check(prefix) if self.prefix_check is not None else prefix == self.prefixed

    def parse_options(self, raw: Dict[str, List[str]]) -> Dict[str, Any]:
        """Text option values -> parsed ones; UserError for an unknown option or a bad value."""
        parsed: Dict[str, Any] = {}
        for key, values in raw.items():
            prefix, dot, rest = key.partition(".")
            if dot and rest and self.takes_prefix(prefix):
                parsed[key] = ",".join(values)
                continue
            option = self.options.get(key)
            if option is None:
                raise UserError(f"backend {self.name} has no option {key!r}; known: "
                                f"{', '.join(self.known_options()) or 'none'}")
            if len(values) > 1 and not option.many:
                raise UserError(f"backend {self.name}: option {key} takes one value, got {','.join(values)}")
            try:
                parsed[key] = option.parse(values if option.many else values[0])
            except ValueError as exc:
                raise UserError(f"backend {self.name}: option {key}: {exc}") from None
        return parsed


@dataclass
class BackendSpec:
    """A backend named with its options, as parsed from `NAME[:OPTION=VALUE,...]`."""

    name: str  # 'auto' or a registered backend
    options: Dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.name


def split_options(text: str, what: str) -> Dict[str, List[str]]:
    """'a=1,b=x,y' -> {'a': ['1'], 'b': ['x', 'y']} (a bare item continues the option before it)."""
    options: Dict[str, List[str]] = {}
    current = None
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if "=" in item:
            current, _, value = item.partition("=")
            current = current.strip()
            if not current:
                raise UserError(f"{what}: an option has no name in {text!r}")
            if current in options:
                raise UserError(f"{what}: option {current} given twice")
            options[current] = [value.strip()]
        elif current is None:
            raise UserError(f"{what}: expected OPTION=VALUE, got {item!r}")
        else:
            options[current].append(item)
    return options


def parse_backend(text: Any) -> BackendSpec:
    """`NAME[:OPTION=VALUE,...]` -> BackendSpec; UserError naming the known backends or options."""
    if isinstance(text, BackendSpec):
        return text
    text = str(text or "auto").strip()
    name, _, rest = text.partition(":")
    name = name.strip()
    if name == "auto":
        if rest.strip():
            raise UserError("backend auto takes no options; name the backend to give options")
        return BackendSpec("auto", {}, text)
    kind = get_backend(name)
    return BackendSpec(name, kind.parse_options(split_options(rest, f"backend {name}")), text)


def backend_names() -> List[str]:
    return _BACKENDS.names()


def get_backend(name: str) -> BackendType:
    return _BACKENDS.get(name)


def backend_types() -> List[BackendType]:
    """Every registered backend, in this device's order of preference (its profile's
    preferred backends first, then the rest by name)."""
    from devices.profile import detect

    preferred = [entry.partition(":")[0] for entry in detect().preferred_backends]
    rank = {name: i for i, name in enumerate(preferred)}
    return sorted(_BACKENDS.all(), key=lambda kind: (rank.get(kind.name, len(rank)), kind.name))


def installed(name: str) -> bool:
    return get_backend(name).installed()


def backends_for(path: str) -> List[str]:
    """Backends that can run this file on this machine, preferred first."""
    fmt = model_format(path)
    return [kind.name for kind in backend_types() if kind.runs(fmt) and kind.installed()]


def open_backend(path: str, backend: Any = "auto", threads: Optional[int] = None) -> Backend:
    """Load `path` with the named backend (a name, `NAME:OPTIONS` or a BackendSpec;
    "auto": the first installed backend that runs the file's format)."""
    spec = parse_backend(backend)
    fmt = model_format(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such model file")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    if spec.name == "auto":
        names = backends_for(path)
        if not names:
            wanted = " or ".join(kind.install for kind in backend_types() if kind.runs(fmt))
            raise UserError(f"{path}: no backend for .{fmt} files is installed; pip install {wanted}")
        spec = BackendSpec(names[0])
    kind = get_backend(spec.name)
    if not kind.runs(fmt):
        able = [other.name for other in backend_types() if other.runs(fmt)]
        raise UserError(f"backend {kind.name} cannot run .{fmt} files (it runs "
                        f"{', '.join('.' + f for f in kind.formats)}; {', '.join(able) or 'no backend'} can)")
    if not kind.installed():
        raise UserError(f"backend {kind.name} is not installed (pip install {kind.install})")
    loaded = kind.opener(path, threads, spec.options)
    loaded.options = dict(spec.options)
    return loaded


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
