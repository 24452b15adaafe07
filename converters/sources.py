"""What `edgecnn convert` accepts as SRC: an edgecnn checkpoint, an edgecnn int8
program (.pt2 from `edgecnn quantize`), any model as `file.py:factory` (+ weights), a
TorchScript file, or a torch.export program. Models without a card get one from
flags (--task, --input-size, --labels, --mean, --std, --bgr/--gray)."""
from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Optional

import torch

from edgecnn.core.card import DEFAULT_MEAN, DEFAULT_STD, ModelCard
from edgecnn.core.errors import UserError
from edgecnn.core.task import get_task
from edgecnn.runtime.card_options import CardOptions, parse_floats, parse_input_size, parse_labels


@dataclass
class Source:
    path: str
    card: ModelCard
    model: Optional[torch.nn.Module] = None  # fp32 model (None for an int8 program)
    quantized: Optional[object] = None  # edgecnn.compress.quantize.QuantizedModel
    kind: str = "checkpoint"


def card_from_flags(model: torch.nn.Module, flags: CardOptions, name: str) -> ModelCard:
    if not flags.input_size:
        raise UserError(f"{name} carries no model card: pass --input-size N|HxW (and --labels, --mean, --std, "
                        "--task as needed)")
    height, width = parse_input_size(flags.input_size)
    channels = 1 if flags.color == "gray" else 3
    task_name, color = flags.task or "classify", flags.color or "rgb"
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, channels, height, width))
    except Exception as exc:  # any model error: the size does not suit it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{name} rejects a {channels}x{height}x{width} input: {first[:160]}") from None
    task = get_task(task_name)
    outputs = out if isinstance(out, (tuple, list)) else [out]
    labels = parse_labels(flags.labels) if flags.labels else task.labels_from_outputs([tuple(o.shape) for o in outputs])
    if labels is None:
        raise UserError(f"a {task.name} model without a card needs --labels")
    mean = parse_floats(flags.mean, "--mean") if flags.mean else (DEFAULT_MEAN,)
    std = parse_floats(flags.std, "--std") if flags.std else (DEFAULT_STD,)
    return ModelCard(task=task_name, labels=labels, input_size=(height, width), layout="nchw", color=color,
                     mean=mean, std=std, architecture={"name": os.path.basename(name)}, **task.card_defaults())


def load_factory(spec: str, weights: Optional[str]) -> torch.nn.Module:
    file, _, factory = spec.rpartition(":")
    if not os.path.isfile(file):
        raise UserError(f"{file}: no such Python file")
    module_spec = importlib.util.spec_from_file_location(f"edgecnn_user_{abs(hash(file))}", file)
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(file)))
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's code may raise anything
        raise UserError(f"{file} failed to import: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.pop(0)
    if not callable(getattr(module, factory, None)):
        raise UserError(f"{file} has no callable {factory!r}")
    try:
        model = getattr(module, factory)()
    except Exception as exc:  # the user's code may raise anything
        raise UserError(f"{spec}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise UserError(f"{spec}() returned {type(model).__name__}, not a torch.nn.Module")
    if weights:
        if not os.path.isfile(weights):
            raise UserError(f"{weights}: no such weights file")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            state = state.get("model", state.get("state_dict", state)) if isinstance(state, dict) else state
            model.load_state_dict(state)
        except Exception as exc:  # wrong file, wrong keys or shapes
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{weights} does not fit {spec}(): {first[:160]}") from None
    return model.eval()


def load_source(src: str, flags: CardOptions, weights: Optional[str] = None) -> Source:
    if ".py:" in src:
        model = load_factory(src, weights)
        return Source(src, card_from_flags(model, flags, src), model, kind="factory")
    if not os.path.isfile(src):
        raise UserError(f"{src}: no such model file")
    if src.endswith(".pt2"):
        return _load_program(src, flags)
    from edgecnn.training.checkpoint import FORMAT, load_model

    try:
        payload = torch.load(src, map_location="cpu", weights_only=True)
        is_checkpoint = isinstance(payload, dict) and payload.get("format") == FORMAT
    except Exception:  # not a plain pickle: maybe TorchScript
        is_checkpoint = False
    if is_checkpoint:
        model, card, _ = load_model(src)
        return Source(src, card, model, kind="checkpoint")
    try:
        scripted = torch.jit.load(src, map_location="cpu").eval()
    except Exception:  # neither a checkpoint nor TorchScript
        raise UserError(f"{src}: not an edgecnn checkpoint, TorchScript file or .pt2 program "
                        "(a bare state_dict needs its code: use file.py:factory --weights FILE)") from None
    return Source(src, card_from_flags(scripted, flags, src), scripted, kind="torchscript")


def _load_program(src: str, flags: CardOptions) -> Source:
    from edgecnn.compress.quantize.program import CARD_FILE, quantized_from_program, read_program

    model, extra = read_program(src)
    if extra[CARD_FILE]:
        quantized = quantized_from_program(model, extra)
        return Source(src, quantized.card, None, quantized, kind="int8-program")
    return Source(src, card_from_flags(model, flags, src), model, kind="export")
