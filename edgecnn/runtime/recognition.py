"""Recognising a detector file that carries no edgecnn card (a YOLO from Ultralytics or
the YOLOv5 repository, a TFLite SSD, a jetson-inference SSD), so it runs with no flags.

The facts of a file (input tensor, output shapes and names, the exporter's metadata)
are offered to every head (`Head.recognise`); each says whether the file is in its
layout and which card fields it can read off it. Exactly one head must claim the file:
none is one line naming the shapes seen and the flags that declare a head, several is
one line naming the candidates and `--head`. A head that claims a file but finds its
metadata contradicting the shapes raises that as one line itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgecnn.core.errors import UserError


@dataclass
class FileFacts:
    """What a model file says about itself, before any card exists."""

    format: str  # 'onnx' | 'tflite'
    input_shape: Tuple[int, ...]
    input_dtype: str  # numpy dtype name: 'float32', 'uint8', 'int8'
    input_quant: Optional[Tuple[float, int]]
    output_shapes: List[Tuple[int, ...]]
    output_names: List[str]
    metadata: Dict[str, Any] = field(default_factory=dict)  # edgecnn.runtime.exporter_metadata fields
    input_size: Optional[Tuple[int, int]] = None  # (h, w) when known
    layout: Optional[str] = None
    channels: Optional[int] = None


def concrete_input(backend, input_size: Optional[Tuple[int, int]] = None):
    """(input shape to run at, layout, (h, w), channels). Dynamic height and width take
    `input_size`, else the card's, else the exporter's imgsz; a dynamic batch is 1.
    UserError when a dynamic dimension has no size to take."""
    from edgecnn.runtime.card_options import input_geometry

    shape = tuple(backend.input_shape)
    layout, size, channels = input_geometry(tuple(max(d, 1) if i == 0 else d for i, d in enumerate(shape)))
    if layout is None and len(shape) == 4:  # dynamic height and width: the layout shows in the channel axis
        layout = "nchw" if shape[1] in (1, 3) else ("nhwc" if shape[3] in (1, 3) else None)
        channels = shape[1] if layout == "nchw" else (shape[3] if layout == "nhwc" else None)
    card_size = tuple(backend.card.input_size) if backend.card is not None else None
    size = size or input_size or card_size or backend.metadata.get("imgsz")
    concrete = tuple(max(d, 1) for d in shape)
    if any(d < 0 for d in shape[1:]):
        if size is None or layout is None:
            raise UserError(f"{backend.path}: the model's input {shape} has dynamic dimensions; give --input-size")
        concrete = (1, channels, *size) if layout == "nchw" else (1, *size, channels)
    return concrete, layout, (tuple(size) if size else None), channels


def file_facts(backend, input_size: Optional[Tuple[int, int]] = None) -> FileFacts:
    """Facts of a loaded backend; output shapes from one inference on a blank input
    (dynamic input dimensions take `input_size`, else the exporter's imgsz)."""
    concrete, layout, size, channels = concrete_input(backend, input_size)
    outputs = backend.infer(np.zeros(concrete, np.float32))
    return FileFacts(format=backend.format, input_shape=concrete,
                     input_dtype=np.dtype(backend.input_dtype).name, input_quant=backend.input_quant,
                     output_shapes=[tuple(int(d) for d in o.shape) for o in outputs],
                     output_names=list(backend.output_names), metadata=dict(backend.metadata),
                     input_size=size, layout=layout, channels=channels)


def grid_cells(input_size: Tuple[int, int], strides: Sequence[int]) -> int:
    """Cells over all stride levels for an input (h, w): a YOLO's anchor-point count."""
    height, width = input_size
    return sum(math.ceil(height / s) * math.ceil(width / s) for s in strides)


def yolo_strides(facts: FileFacts) -> Tuple[int, ...]:
    """Strides 8..32, or 8..64 for P6 models (the exporter's stride says which)."""
    return (8, 16, 32, 64) if facts.metadata.get("stride") == 64 else (8, 16, 32)


def labels_for(facts: FileFacts, classes: Optional[int], model_name: str) -> Optional[List[str]]:
    """The exporter's names, checked against the class count the outputs show (None:
    the outputs do not show it); numbered labels when the file names none."""
    names = facts.metadata.get("names")
    if names is not None:
        if classes is not None and len(names) != classes:
            raise UserError(f"{model_name}: its metadata names {len(names)} classes but its outputs "
                            f"{facts.output_shapes} have {classes}")
        return list(names)
    return [str(i) for i in range(classes)] if classes else None


def check_metadata_size(facts: FileFacts, model_name: str) -> None:
    size = facts.metadata.get("imgsz")
    if size is not None and facts.input_size is not None and tuple(size) != tuple(facts.input_size):
        raise UserError(f"{model_name}: its metadata says imgsz {list(size)} but the model takes "
                        f"{facts.input_size[0]}x{facts.input_size[1]}")


def check_metadata_task(facts: FileFacts, model_name: str) -> bool:
    """Whether the exporter's task (when it names one) is detection."""
    task = facts.metadata.get("task")
    return task is None or task == "detect"


def recognise_file(facts: FileFacts, model_name: str, head_entry: Optional[Dict] = None) -> Optional[Dict]:
    """Card fields for a file without a card, from the one head whose layout it has
    (`head_entry`: the head named by --head, the only one then tried). None when no
    head claims it and no head was named."""
    from edgecnn.runtime.heads import all_heads, get_head

    if head_entry is not None:
        head = get_head(head_entry["format"])
        fields = head.recognise(facts, model_name)
        if fields is None:
            return None
        fields["head"] = {**fields["head"], **head_entry}
        return fields
    claims = {}
    for head in all_heads():
        fields = head.recognise(facts, model_name)
        if fields is not None:
            claims[head.name] = fields
    if len(claims) > 1:
        names = sorted(claims)
        raise UserError(f"{model_name}: outputs {facts.output_shapes} fit several detector heads ({', '.join(names)}); "
                        f"pick one with --head {names[0]} (or {', '.join('--head ' + n for n in names[1:])})")
    return next(iter(claims.values()), None)


BOX_SCALES = ("pixels", "normalised", "auto")
# "auto": normalised when every coordinate lies within this, else input pixels (a box of a
# real detection is wider than 2 px; a normalised one lies within 0..1, a little beyond
# at the image edge)
NORMALISED_LIMIT = 2.0


def parse_box_scale(arguments: str) -> Dict[str, str]:
    """`--head NAME:pixels|normalised` -> the card's box scale entry ({} when not given)."""
    if not arguments:
        return {}
    if arguments not in BOX_SCALES:
        raise ValueError(f"boxes are {' or '.join(BOX_SCALES)}, got {arguments!r}")
    return {"boxes": arguments}


def box_scale_of(card, corners: np.ndarray, reference: Optional[np.ndarray] = None) -> np.ndarray:
    """Corner boxes in input pixels: normalised ones (the card's head says) scaled up; for
    "auto", normalised when every coordinate of `reference` (default: the corners
    themselves, e.g. all of a model's output rows) lies within NORMALISED_LIMIT."""
    scale = card.head.get("boxes")
    if scale == "auto":
        values = corners if reference is None else reference
        scale = "normalised" if values.size and float(np.abs(values).max()) <= NORMALISED_LIMIT else "pixels"
    if scale == "normalised":
        height, width = card.input_size
        return corners * np.array([width, height, width, height], np.float32)
    return corners


def letterbox_card_fields(facts: FileFacts, head_name: str, labels: Optional[List[str]]) -> Dict[str, Any]:
    """What a YOLO from Ultralytics or the YOLOv5 repository is fed: letterboxed RGB,
    pixel / 255; boxes in input pixels in ONNX files, normalised in TFLite ones."""
    return {"task": "detect", "labels": labels, "input_size": facts.input_size, "layout": facts.layout,
            "color": "rgb", "mean": (0.0,), "std": (255.0,),
            "head": {"format": head_name, "boxes": "normalised" if facts.format == "tflite" else "pixels"}}


def pixel_card_fields(facts: FileFacts) -> Dict[str, Any]:
    """mean/std under which a uint8 input receives the raw pixel values, as the TensorFlow
    and Coral examples feed quantized SSDs: (pixel - zero point) * scale quantizes back to
    the pixel exactly. {} for other inputs."""
    if facts.input_dtype != "uint8":
        return {}
    scale, zero_point = facts.input_quant or (1.0, 0)
    return {"mean": (float(zero_point),), "std": (1.0 / scale,)}


def facts_of(backend, options=None) -> Optional[FileFacts]:
    """The facts recognition reads, for a file without a card (None for one with a card)."""
    if backend.card is not None:
        return None
    from edgecnn.runtime.card_options import parse_input_size

    given = getattr(options, "input_size", None)
    return file_facts(backend, parse_input_size(given) if given else None)
