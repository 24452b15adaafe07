"""Turning an exporter's failure into one line that names the op and the layer."""
from __future__ import annotations

import re
from typing import Optional

import torch

from edgecnn.core.errors import UserError

_OP_PATTERN = re.compile(r"aten(?:::|\.)([A-Za-z0-9_]+)")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:240]


def layer_of(model: torch.nn.Module, sample: torch.Tensor, op: str) -> Optional[str]:
    """The module path whose forward calls aten.<op>, looked up in a non-strict
    torch.export graph and, for ops that only appear after decomposition (rfft2 ->
    _fft_r2c), in its decomposed form."""
    from edgecnn.core.descriptors import quiet

    try:
        with quiet():
            program = torch.export.export(model, (sample,), strict=False)
            graphs = [program.graph, program.run_decompositions().graph]
    except Exception:  # the model may not export at all; then no layer can be named
        return None
    for node in (node for graph in graphs for node in graph.nodes):
        target = getattr(node.target, "__name__", str(node.target)).split(".")[0]
        if node.op == "call_function" and target == op:
            stack = node.meta.get("nn_module_stack") or {}
            if stack:
                path, kind = list(stack.values())[-1]
                kind_name = getattr(kind, "__name__", str(kind).rsplit(".", 1)[-1].strip("'>"))
                return f"{path.split(chr(39) + 'self' + chr(39), 1)[-1].lstrip('.') or '(top)'} ({kind_name})"
            return "(top level)"
    return None


def conversion_error(target: str, exc: BaseException, model: torch.nn.Module, sample: torch.Tensor) -> UserError:
    """A UserError naming the unsupported op and, when found, the layer it came from."""
    message = str(exc)
    match = _OP_PATTERN.search(message)
    if not match:
        return UserError(f"{target} conversion failed: {first_line(exc)}")
    op = match.group(1)
    base = op.split(".")[0]
    layer = layer_of(model, sample, base)
    where = f" in layer {layer}" if layer else ""
    return UserError(f"{target} cannot express op aten.{op}{where}: {first_line(exc)}")
