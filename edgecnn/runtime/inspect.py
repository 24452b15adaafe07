"""`edgecnn info` for converted model files (.tflite, .onnx), with only the device
runtime installed: the card, the input and output tensors, quantization, the operator
histogram and the detector head the outputs are read with."""
from __future__ import annotations

import os
from typing import Any, Dict

import numpy as np

from edgecnn.runtime.backends import open_backend
from edgecnn.runtime.heads import DEFAULT_HEAD, recognise
from edgecnn.runtime.model_file import model_format


def describe_file(path: str) -> Dict[str, Any]:
    fmt = model_format(path)
    backend = open_backend(path)
    tensors = backend.tensors()
    card = backend.card
    shapes = [tuple(o.shape) for o in backend.infer(np.zeros(
        tuple(1 if d < 0 else d for d in backend.input_shape), np.float32))]
    if card is not None and card.head:
        head = {"name": card.head.get("format", DEFAULT_HEAD), "from": "card"}
    elif card is not None:
        head = None
    else:
        head = recognised_head(backend, shapes)
    integer = [t for t in tensors["inputs"] + tensors["outputs"] if t["dtype"] in ("int8", "uint8")]
    ops = backend.op_counts()
    quantized_ops = sum(n for op, n in ops.items() if op in ("QuantizeLinear", "DequantizeLinear", "QUANTIZE",
                                                              "DEQUANTIZE"))
    return {"path": str(path), "format": fmt, "size_bytes": os.path.getsize(path),
            "card": card.to_dict() if card is not None else None, "backend": backend.name,
            "inputs": tensors["inputs"], "outputs": tensors["outputs"], "output_shapes": [list(s) for s in shapes],
            "quantization": {"precision": card.precision if card is not None else (
                "int8" if integer or quantized_ops else "fp32"), "integer_io": len(integer),
                "quantize_ops": quantized_ops},
            "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1])), "head": head}


def recognised_head(backend, shapes) -> Dict[str, Any]:
    """The head a file without a card runs with (`edgecnn run` needs no --head then),
    else the heads whose layout its outputs fit."""
    from edgecnn.core.errors import UserError
    from edgecnn.runtime.recognition import facts_of, recognise_file

    try:
        fields = recognise_file(facts_of(backend), os.path.basename(backend.path))
    except UserError as exc:  # ambiguous, or metadata contradicting the shapes
        return {"name": None, "from": "outputs", "candidates": recognise(shapes), "problem": str(exc)}
    if fields is not None:
        source = "exporter metadata and outputs" if backend.metadata else "outputs"
        return {"name": fields["head"]["format"], "from": source, "candidates": [fields["head"]["format"]],
                "labels": len(fields["labels"]) if fields.get("labels") else None}
    candidates = recognise(shapes)
    return {"name": candidates[0] if len(candidates) == 1 else None, "from": "outputs", "candidates": candidates}


def format_file_description(info: Dict[str, Any]) -> str:
    lines = [f"{info['path']}  ({info['format']}, {info['size_bytes'] / 1e6:.2f} MB, {info['backend']})"]
    card = info["card"]
    if card:
        labels = card["labels"]
        lines += [f"  task          {card['task']}  ({len(labels)} classes: {', '.join(labels[:12])}"
                  f"{' ...' if len(labels) > 12 else ''})",
                  f"  input         {card['input_size'][0]}x{card['input_size'][1]} {card['layout']} {card['color']}"
                  f"  mean {card['mean']} std {card['std']}"]
        if card.get("metrics"):
            shown = ", ".join(f"{k} {100 * v:.2f}%" if k in ("top1", "map50_95", "map50") else f"{k} {v}"
                              for k, v in card["metrics"].items())
            lines.append(f"  measured      {shown}")
    else:
        lines.append("  card          none (run it with --task --input-size --mean --std --labels ...)")
    for kind in ("inputs", "outputs"):
        for tensor in info[kind]:
            quant = tensor["quantization"]
            lines.append(f"  {kind[:-1]:<13} {tensor['name']} {tensor['shape']} {tensor['dtype']}"
                         + (f" (scale {quant[0]:.4g}, zero point {quant[1]})" if quant else ""))
    q = info["quantization"]
    lines.append(f"  precision     {q['precision']} ({q['integer_io']} integer input/output tensors, "
                 f"{q['quantize_ops']} quantize/dequantize ops)")
    lines.append("  ops           " + ", ".join(f"{op} {n}" for op, n in info["ops"].items()))
    head = info["head"]
    if head is not None:
        if head["name"]:
            lines.append(f"  head          {head['name']} (from the {head['from']})")
        elif head.get("candidates"):
            lines.append(f"  head          ambiguous: {', '.join(head['candidates'])} (choose with --head)"
                         + (f"; {head['problem']}" if head.get("problem") else ""))
        else:
            lines.append("  head          none recognised from the outputs")
    return "\n".join(lines)
