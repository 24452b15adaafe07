"""Model files for the runtime tests, committed under tests/data/models (made by
tests/make_runtime_fixtures.py), so these tests need no torch and no onnx package."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
MODELS = DATA / "models"
VIDEO = DATA / "tree.avi"
VIDEO_FRAMES = 68


def detector_onnx() -> Path:
    """The bundled shapes detector, exported to ONNX with its card."""
    return MODELS / "shapes_detector.onnx"


def digits_onnx() -> Path:
    """The bundled digits classifier, exported to ONNX with its card."""
    return MODELS / "digits.onnx"


def int8_io_onnx() -> Path:
    """x: int8 (1, 3, 4, 4) -> float_out = float(x) and int8_out = x, with a card giving
    input (0.5, 3) and outputs (1.0, 0), (0.25, 1) as scale and zero point."""
    return MODELS / "int8_io.onnx"


def without_card(source: Path, out: Path) -> Path:
    """A copy of an ONNX file with its metadata_props (ModelProto field 14, where the
    card lives) removed, written with the wire-format reader alone."""
    from edgecnn.runtime.onnx_wire import _varint

    data, kept, position = source.read_bytes(), [], 0
    while position < len(data):
        start = position
        key, position = _varint(data, position)
        wire = key & 7
        if wire == 0:
            _, position = _varint(data, position)
        elif wire == 2:
            length, position = _varint(data, position)
            position += length
        else:
            position += 8 if wire == 1 else 4
        if key >> 3 != 14:
            kept.append(data[start:position])
    out.write_bytes(b"".join(kept))
    return out
