"""What other toolkits' exporters write into a model file, read without their code, so
that their detectors run with no flags.

- ONNX: `metadata_props` (string keys and values). Ultralytics writes `names` (a Python
  dict literal {0: 'person', ...}), `imgsz` ([h, w]), `stride`, `task` and, for
  end-to-end heads, `end2end`; the classic YOLOv5 repository writes `stride` and `names`.
- TFLite: a zip archive appended to the flatbuffer. Ultralytics puts the same fields in
  `metadata.json`; TFLite Support metadata (TF Hub and Coral files) puts the label map
  there as a text file, one label a line.

A missing, truncated or unreadable archive, a member that would inflate beyond
MAX_MEMBER bytes, or a field that does not parse reads as absent: the metadata helps
recognition, it never stops a model from loading.
"""
from __future__ import annotations

import ast
import io
import json
import math
import struct
import zipfile
import zlib
from typing import Any, Dict, List, Optional, Tuple

ULTRALYTICS_KEYS = ("task", "imgsz", "end2end")  # keys only Ultralytics writes (classic YOLOv5: stride, names)
MAX_MEMBER = 1 << 20  # bytes an archive member may inflate to (a label map of thousands of lines is ~100 KB)


def _literal(text: Any) -> Any:
    """A metadata value: JSON, a Python literal (what str() of a dict or list gives), or the text."""
    if not isinstance(text, str):
        return text
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return text


def _names(value: Any) -> Optional[List[str]]:
    """names as {index: name} (keys may be strings) or a list -> a list in index order."""
    value = _literal(value)
    if isinstance(value, (list, tuple)) and value:
        return [str(v) for v in value]
    if isinstance(value, dict) and value:
        try:
            indexed = {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError, OverflowError):
            return None
        if sorted(indexed) != list(range(len(indexed))):
            return None
        return [indexed[i] for i in range(len(indexed))]
    return None


def _size(value: Any) -> Optional[Tuple[int, int]]:
    value = _literal(value)
    try:
        if isinstance(value, (int, float)):
            size = int(value), int(value)
        elif isinstance(value, (list, tuple)) and len(value) in (1, 2):
            size = int(value[0]), int(value[-1])
        else:
            return None
    except (TypeError, ValueError, OverflowError):
        return None
    return size if min(size) > 0 else None


def parse_fields(raw: Dict[str, Any]) -> Dict[str, Any]:
    """Raw metadata (strings or JSON values) -> the fields recognition uses:
    exporter ('ultralytics' | 'yolov5' | None), names, imgsz (h, w), stride, task, end2end."""
    fields: Dict[str, Any] = {}
    names = _names(raw.get("names"))
    if names:
        fields["names"] = names
    size = _size(raw.get("imgsz"))
    if size:
        fields["imgsz"] = size
    stride = _literal(raw.get("stride"))
    if isinstance(stride, (int, float)) and math.isfinite(stride) and stride >= 1:
        fields["stride"] = int(stride)
    if isinstance(raw.get("task"), str):
        fields["task"] = raw["task"]
    end2end = _literal(raw.get("end2end"))
    if isinstance(end2end, (bool, str)):
        fields["end2end"] = end2end is True or str(end2end).lower() == "true"
    if any(key in raw for key in ULTRALYTICS_KEYS):
        fields["exporter"] = "ultralytics"
    elif "stride" in fields and "names" in fields:
        fields["exporter"] = "yolov5"
    return fields


def onnx_metadata(props: Dict[str, str], skip: str) -> Dict[str, Any]:
    """An onnxruntime session's custom metadata map (less edgecnn's own card key)."""
    return parse_fields({k: v for k, v in props.items() if k != skip})


def appended_zip(data: bytes) -> Dict[str, Any]:
    """The metadata in a zip appended to a TFLite file: metadata.json's fields, or a
    label map (the first .txt file) as names. {} when there is none or it is unreadable."""
    tail = data.rfind(b"PK\x05\x06")  # the zip's end-of-central-directory record
    if tail < 0:
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.namelist()

            def read(name: str) -> str:
                if archive.getinfo(name).file_size > MAX_MEMBER:
                    raise ValueError(f"{name} would inflate beyond {MAX_MEMBER} bytes")
                return archive.read(name).decode("utf-8")

            if "metadata.json" in members:
                raw = _literal(read("metadata.json"))
                return parse_fields(raw) if isinstance(raw, dict) else {}
            texts = [m for m in members if m.lower().endswith(".txt")]
            if texts:
                lines = [line.strip() for line in read(texts[0]).splitlines()]
                labels = [line for line in lines if line]
                return {"names": labels, "labels_file": texts[0]} if labels else {}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, KeyError, ValueError,
            struct.error, UnicodeDecodeError, NotImplementedError, RuntimeError):
        return {}
    return {}
