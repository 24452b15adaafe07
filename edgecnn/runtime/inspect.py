"""`edgecnn info` for converted model files (.tflite, .onnx), with only the device
runtime installed: the card, whether the weights match the digest it records, the
input and output tensors, quantization, the operator histogram and the detector head
the outputs are read with."""
from __future__ import annotations

import os
from typing import Any, Dict

import numpy as np

from edgecnn.core.errors import UserError
from edgecnn.runtime.backends import first_line, open_backend
from edgecnn.runtime.heads import DEFAULT_HEAD, recognise
from edgecnn.runtime.model_file import model_format


def describe_file(path: str) -> Dict[str, Any]:
    from edgecnn.runtime.integrity import check_weights
    from edgecnn.runtime.precision import file_precision
    from edgecnn.runtime.recognition import concrete_input

    fmt = model_format(path)
    backend = open_backend(path)
    tensors = backend.tensors()
    card = backend.card
    weights = check_weights(path, card)
    try:  # a dynamic input runs at the card's size or the exporter's imgsz
        run_at, _, _, _ = concrete_input(backend)
    except UserError:
        run_at = None
    shapes = probe_output_shapes(backend, run_at) if run_at else None
    if card is not None and card.head:
        head = {"name": card.head.get("format", DEFAULT_HEAD), "from": "card"}
    elif card is not None:
        head = None
    elif shapes is None:
        head = {"name": None, "from": "outputs", "candidates": [],
                "problem": "the input has dynamic dimensions and the file names no size to run it at"}
    else:
        head = recognised_head(backend, shapes)
    integer = [t for t in tensors["inputs"] + tensors["outputs"] if t["dtype"] in ("int8", "uint8")]
    ops = backend.op_counts()
    quantized_ops = sum(n for op, n in ops.items() if op in ("QuantizeLinear", "DequantizeLinear", "QUANTIZE",
                                                              "DEQUANTIZE"))
    return {"path": str(path), "format": fmt, "size_bytes": os.path.getsize(path),
            "card": card.to_dict() if card is not None else None, "backend": backend.name,
            "weights": {"digest": weights.status, "recorded": weights.recorded, "computed": weights.computed},
            "inputs": tensors["inputs"], "outputs": tensors["outputs"],
            "runs_at": list(run_at) if run_at else None,
            "output_shapes": [list(s) for s in shapes] if shapes is not None else None,
            "quantization": {"precision": card.precision if card is not None else file_precision(path),
                             "integer_io": len(integer), "quantize_ops": quantized_ops},
            "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1])), "head": head}


def probe_output_shapes(backend, run_at) -> list:
    """Output shapes from one inference on a blank input of shape `run_at`; a file that
    cannot run at the size it names is one line."""
    try:
        return [tuple(o.shape) for o in backend.infer(np.zeros(run_at, np.float32))]
    except UserError:
        raise
    except Exception as exc:  # the engine's own exception types
        raise UserError(f"{backend.path}: {backend.name} cannot run it at {list(run_at)}: {first_line(exc)}") \
            from None


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


WEIGHTS_STATUS = {
    "match": "match the digest in the card",
    "mismatch": "DO NOT match the digest in the card: changed or corrupted after conversion "
                "(edgecnn run refuses it without --no-verify)",
    "not recorded": "digest not recorded in the card (converted before edgecnn recorded one)",
}


def format_file_description(info: Dict[str, Any]) -> str:
    lines = [f"{info['path']}  ({info['format']}, {info['size_bytes'] / 1e6:.2f} MB, {info['backend']})"]
    card = info["card"]
    if card:
        labels = card["labels"]
        lines += [f"  task          {card['task']}  ({len(labels)} classes: {', '.join(labels[:12])}"
                  f"{' ...' if len(labels) > 12 else ''})",
                  f"  input         {card['input_size'][0]}x{card['input_size'][1]} {card['layout']} {card['color']}"
                  f"  mean {card['mean']} std {card['std']}"]
        weights = info["weights"]["digest"]
        if card.get("metrics"):
            from edgecnn.core.task import format_metric

            shown = ", ".join(format_metric(k, v) for k, v in card["metrics"].items())
            lines.append(f"  measured      {shown}" + (" (for the weights converted, not these)"
                                                       if weights == "mismatch" else ""))
        lines.append("  weights       " + WEIGHTS_STATUS[weights])
    else:
        lines.append("  card          none (run it with --task --input-size --mean --std --labels ...)")
    for kind in ("inputs", "outputs"):
        for tensor in info[kind]:
            quant = tensor["quantization"]
            lines.append(f"  {kind[:-1]:<13} {tensor['name']} {tensor['shape']} {tensor['dtype']}"
                         + (f" (scale {quant[0]:.4g}, zero point {quant[1]})" if quant else ""))
    if info["runs_at"] is None:
        lines.append("  runs at       unknown: the input has dynamic dimensions and the file names no size "
                     "(give --input-size to run or bench it)")
    elif any(isinstance(d, str) or d < 0 for d in info["inputs"][0]["shape"]):
        lines.append(f"  runs at       {info['runs_at']} (dynamic input; the size the file names)")
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
