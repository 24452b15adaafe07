"""LiteRT (`ai-edge-litert`) for .tflite files: XNNPACK on the CPU by default, or an
external delegate by library path.

    litert:delegate=/usr/lib/libedgetpu.so.1,delegate.device=usb
    litert:xnnpack=off
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from edgecnn.runtime.backends import BackendType
from edgecnn.runtime.backends._tflite import OPTIONS, TFLiteBackend


def open_litert(path: str, threads: Optional[int], options: Dict[str, Any]) -> TFLiteBackend:
    from ai_edge_litert import interpreter

    return TFLiteBackend(path, threads, options, "litert", interpreter)


BACKEND = BackendType(
    name="litert", formats=("tflite",), precisions=("fp32", "fp16", "int8"), module="ai_edge_litert",
    install="ai-edge-litert", opener=open_litert, distributions=("ai-edge-litert", "ai-edge-litert-nightly"), options=OPTIONS, prefixed="delegate",
    summary="LiteRT (ai-edge-litert): .tflite files; XNNPACK, or a delegate by library path (Coral, GPU, NPU)")
