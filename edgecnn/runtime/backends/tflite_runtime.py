"""tflite-runtime for .tflite files: what a Raspberry Pi with numpy<2 may have instead
of ai-edge-litert. Same interpreter API, same options."""
from __future__ import annotations

from typing import Any, Dict, Optional

from edgecnn.runtime.backends import BackendType
from edgecnn.runtime.backends._tflite import OPTIONS, TFLiteBackend


def open_tflite_runtime(path: str, threads: Optional[int], options: Dict[str, Any]) -> TFLiteBackend:
    from tflite_runtime import interpreter

    return TFLiteBackend(path, threads, options, "tflite-runtime", interpreter)


BACKEND = BackendType(
    name="tflite-runtime", formats=("tflite",), precisions=("fp32", "int8"), module="tflite_runtime",
    install="tflite-runtime", opener=open_tflite_runtime, options=OPTIONS, prefixed="delegate",
    summary="tflite-runtime: .tflite files on devices with numpy<2; same options as litert")
